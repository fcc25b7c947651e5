"""A real HTTP server for tests that stream (httpx's ASGI transport buffers whole answers),
a separate `verbatim worker` process, and a server-sent events reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.engines.process_pool import EnginePool
from verbatim.httpserver import uvicorn_options


def wait_until_serving(
    proc: subprocess.Popen[bytes], url: str, *, path: str = "/health/live", timeout_s: float = 60
) -> None:
    """Poll `url + path` until it answers 200; fail if the server process exits or is late."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, "verbatim serve exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"verbatim serve did not answer {path}"
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    url: str
    app: FastAPI


@asynccontextmanager
async def live_server(
    settings: Settings, *, with_worker: bool, engine_pool: EnginePool | None = None
) -> AsyncIterator[Live]:
    app = create_app(settings, with_worker=with_worker, engine_pool=engine_pool)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **uvicorn_options())
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield Live(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_ENV="test",
        VERBATIM_DATABASE_URL=str(settings.database_url),
        VERBATIM_DATA_DIR=str(settings.data_dir),
        VERBATIM_AUTO_MIGRATE="false",
        VERBATIM_SECRET_KEY=str(settings.secret_key),
        VERBATIM_WORKER_HEARTBEAT_S="1",
        VERBATIM_STALLED_AFTER_S="4",
        VERBATIM_WORKER_POLL_S="0.5",
        VERBATIM_LOG_JSON="true",
    )
    env.update(extra)
    return env


def spawn_worker(settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "verbatim.cli", "worker"],
        env=worker_env(settings, **extra),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Sse:
    """One server-sent event as a client reads it."""

    event: str | None = None
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


async def sse_events(response: httpx.Response) -> AsyncIterator[Sse]:
    """Parse the stream as the EventSource spec says (fields, blank line ends an event)."""
    current = Sse()
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or current.event or current.comments:
                current.data = "\n".join(data)
                yield current
            current, data = Sse(), []
            continue
        if line.startswith(":"):
            current.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            current.event = value
        elif name == "id":
            current.id = value
