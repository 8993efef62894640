"""Shared by the serving benchmarks: a Turnus server in a subprocess, and a keep-alive load driver."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def turnus(*args: str, env: dict[str, str]) -> str:
    """Run a ``turnus`` command and return what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "turnus.cli", *args], env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


def server_env(database_url: str, var_dir: Path) -> dict[str, str]:
    env = {**os.environ, "TURNUS_DATABASE_URL": database_url, "TURNUS_VAR_DIR": str(var_dir)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["TURNUS_LOG_LEVEL"] = "WARNING"
    return env


@contextmanager
def serving(env: dict[str, str], *, workers: int = 2, threads: int = 2) -> Iterator[int]:
    """Serve Turnus with granian on a free port while the block runs; yields the port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "turnus.cli", "serve", "--port", str(port), "--workers", str(workers),
         "--threads", str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the server did not come up")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@dataclass
class Result:
    latencies: list[float]
    statuses: dict[int, int]
    elapsed: float

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    def report(self, label: str) -> str:
        count = len(self.latencies)
        return (
            f"{label}: {count} requests in {self.elapsed:.1f} s = {count / self.elapsed:,.0f} req/s, "
            f"p50 {self.percentile(0.50):.1f} ms, p99 {self.percentile(0.99):.1f} ms, "
            f"statuses {self.statuses}"
        )


def request_json(
    connection: http.client.HTTPConnection, method: str, path: str, body: object, headers: dict[str, str]
) -> tuple[int, object]:
    payload = None if body is None else json.dumps(body)
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json", **headers})
    response = connection.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else None)


Step = Callable[[http.client.HTTPConnection, int], int]


def raw_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """An HTTP/1.1 keep-alive request as bytes, ready to send as is."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawConnection:
    """A keep-alive HTTP/1.1 client over a plain socket: sends prepared bytes, reads one whole response.

    Far lighter than ``http.client`` so that the load driver leaves the CPU to the server it measures.
    """

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def _take_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw`` and return the response's status and body."""
        self.sock.sendall(raw)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        status_line, *header_lines = head.split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            return status, self._take(int(headers[b"content-length"]))
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = b""
            while size := int(self._take_line().split(b";")[0], 16):
                body += self._take(size)
                self._take(2)
            while self._take_line():
                pass
            return status, body
        raise ValueError("a response without Content-Length or chunked body on a keep-alive connection")

    def close(self) -> None:
        self.sock.close()
