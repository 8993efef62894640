"""`turnus serve` starts a production server that answers /healthz and the admin."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return response.status, response.read()


@pytest.fixture
def served(tmp_path: Path):
    env = {
        **os.environ,
        "TURNUS_VAR_DIR": str(tmp_path),
        "TURNUS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    turnus = [sys.executable, "-m", "turnus.cli"]
    subprocess.run([*turnus, "migrate", "--no-input", "-v", "0"], env=env, check=True, timeout=120)
    port = _free_port()
    server = subprocess.Popen(
        [*turnus, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(base + "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    server.kill()
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"turnus serve did not come up:\n{output}")
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_the_served_healthz_answers_ok(served):
    status, body = _get(served + "/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"


def test_the_served_admin_login_page_loads_with_its_stylesheet(served):
    status, body = _get(served + "/admin/login/")
    assert status == 200
    assert b"Turnus back-office" in body
    status, css = _get(served + "/static/admin/css/base.css")
    assert status == 200
    assert b"body" in css
