"""The HTTP server as run by `verbatim serve`: bounded request heads, and one log line per 500."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn

from tests.live import wait_until_serving
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.httpserver import uvicorn_options
from verbatim.logs import configure_logging

VERBATIM = str(Path(sys.executable).with_name("verbatim"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[int]:
    """`verbatim serve` in a subprocess on a fresh test database; yields its port."""
    port = free_port()
    env = {
        **os.environ,
        "VERBATIM_ENV": "test",
        "VERBATIM_DATA_DIR": str(tmp_path / "data"),
        "VERBATIM_DATABASE_URL": database_url,
        "VERBATIM_AUTO_MIGRATE": "false",
        "VERBATIM_SECRET_KEY": "test-secret-" + "x" * 40,
        "VERBATIM_LOG_JSON": "false",
    }
    proc = subprocess.Popen(
        [VERBATIM, "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(proc, f"http://127.0.0.1:{port}")
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
def test_request_heads_are_bounded(served: int) -> None:
    port = served
    # Ordinary large headers (16 KiB of cookies) pass.
    r = httpx.get(f"http://127.0.0.1:{port}/health/live", headers={"Cookie": "c=" + "a" * 16384})
    assert r.status_code == 200
    # 70 KiB of one header, still incomplete: refused once the limit (64 KiB) is passed.
    response = raw_request(port, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000)
    assert response.startswith(b"HTTP/1.1 431 "), response[:200]
    assert b'"headers_too_large"' in response
    # Many small headers count too.
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(1000))
    response = raw_request(port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert response.startswith(b"HTTP/1.1 431 "), response[:200]
    # A 32 MB header is cut off long before it is all sent.
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
            block = b"a" * 65536
            while sent < 32 * 1024 * 1024:
                sock.sendall(block)
                sent += len(block)
        except OSError:
            pass
    assert sent < 8 * 1024 * 1024
    # The server is still there.
    assert httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def carries_traceback(record: logging.LogRecord) -> bool:
    msg: Any = record.msg
    return record.exc_info is not None or (isinstance(msg, dict) and "exception" in msg)


async def test_a_500_is_logged_once_with_its_traceback(settings: Settings) -> None:
    app = create_app(settings, with_worker=False)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom-marker")

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", json=True)
    collect = Collect()
    root.addHandler(collect)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **uvicorn_options())
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/boom", headers={"X-Request-ID": "r-500"})
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "internal_error"
        assert "boom-marker" not in r.text
        await asyncio.sleep(0.2)
    finally:
        server.should_exit = True
        await task
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        structlog.reset_defaults()
    with_trace = [r for r in collect.records if carries_traceback(r)]
    assert len(with_trace) == 1, [r.getMessage()[:200] for r in with_trace]
    event = with_trace[0].msg
    assert isinstance(event, dict)
    assert event["event"] == "unhandled_error"
    assert event["request_id"] == "r-500"
    assert "boom-marker" in str(event["exception"])
