"""A real HTTP proxy in front of the S3 server that injects the faults a busy object store produces.

SeaweedFS does not throttle on demand, so the proxy answers some requests itself with the
reply S3 sends when throttling (503 SlowDown) or stalls them past the client's read
timeout, and forwards everything else unchanged (the Host header too, so signatures hold).
"""
from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")


class FaultyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        # method → pending ("slowdown" | "stall", seconds, what the path holds)
        self.faults: dict[str, list[tuple[str, float, str]]] = {}
        self.attempts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that gave up on a stalled reply
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def inject(self, method: str, fault: str, times: int = 1, seconds: float = 0.0, path: str = "") -> None:
        """Answer the next ``times`` requests of ``method`` (whose path holds ``path``) so."""
        with self.lock:
            self.faults.setdefault(method, []).extend([(fault, seconds, path)] * times)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_fault(self, method: str, path: str) -> tuple[str, float] | None:
        with self.lock:
            self.attempts[method] += 1
            pending = self.faults.get(method, [])
            at = next((n for n, (_, _, within) in enumerate(pending) if within in path), None)
            return None if at is None else pending.pop(at)[:2]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = b""
                    while True:
                        line = self.rfile.readline()
                        raw += line
                        size = int(line.split(b";")[0].strip(), 16)
                        if size == 0:
                            while True:  # trailers, then the blank line
                                trailer = self.rfile.readline()
                                raw += trailer
                                if trailer in (b"\r\n", b"\n", b""):
                                    return raw
                        raw += self.rfile.read(size + 2)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _serve(self) -> None:
                body = self._body()
                fault = proxy._next_fault(self.command, self.path)
                if fault and fault[0] == "slowdown":
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOWDOWN)))
                    self.end_headers()
                    self.wfile.write(SLOWDOWN)
                    return
                if fault and fault[0] == "stall":
                    time.sleep(fault[1])
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    upstream.putheader(name, value)
                upstream.endheaders(body)
                reply = upstream.getresponse()
                data = reply.read()
                self.send_response(reply.status, reply.reason)
                for name, value in reply.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        return Handler
