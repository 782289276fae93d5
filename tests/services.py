"""PostgreSQL and Redis on loopback for the distributed test: real servers from the Debian packages.

`make services` installs them. Each gets a fresh data folder and free ports, listens on
127.0.0.1 only and is stopped at the end. PostgreSQL refuses to run as root, so as root it
runs as the ``postgres`` user (``runuser``), from a folder that user owns.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is missing: `make services` installs it")
    return found


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def postgres(databases: tuple[str, ...]) -> Iterator[str]:
    """A PostgreSQL server with ``databases``; yields ``postgresql+psycopg2://postgres@127.0.0.1:PORT``."""
    folder = Path(tempfile.mkdtemp(prefix="enhance-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(_as_postgres([_pg_tool("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c max_connections=200"
    subprocess.run(_as_postgres([_pg_tool("pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        for name in databases:
            subprocess.run([_pg_tool("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                            f"CREATE DATABASE {name}"], check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([_pg_tool("pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """A Redis server without persistence; yields ``redis://127.0.0.1:PORT/0``."""
    binary = shutil.which("redis-server")
    if not binary:
        raise FileNotFoundError("redis-server is missing: `make services` installs it")
    port, folder = free_port(), Path(tempfile.mkdtemp(prefix="enhance-redis-"))
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
