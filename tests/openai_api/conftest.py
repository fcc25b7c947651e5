"""The app on a real socket in the test's event loop (the official OpenAI SDK and curl need
TCP), with the in-process worker and the session's warm engine; users with API keys."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from openai import AsyncOpenAI

from tests.conftest import make_settings
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.engines.process_pool import EnginePool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base_url: str  # http://127.0.0.1:PORT
    settings: Settings

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"


async def serve(settings: Settings, engine_pool: EnginePool) -> AsyncIterator[Served]:
    app = create_app(settings, with_worker=True, engine_pool=engine_pool)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        assert not task.done(), "uvicorn stopped"
        await asyncio.sleep(0.1)
    try:
        yield Served(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


def settings_for(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    return make_settings(tmp_path, database_url, **overrides)


@pytest.fixture
async def served(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> AsyncIterator[Served]:
    async for s in serve(settings_for(tmp_path, database_url), engine_pool):
        yield s


@dataclass
class KeyUser:
    """A registered user: a password session (for the library API) and an API key."""

    http: httpx.AsyncClient  # authenticated with the access token
    key: str
    email: str

    def sdk(self, base_url: str, **kw: Any) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=base_url, api_key=self.key, max_retries=0, **kw)


async def make_user(served: Served, email: str) -> AsyncIterator[KeyUser]:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=120) as http:
        password = "correct horse battery"
        r = await http.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        r = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        r = await http.post("/api/v1/api-keys", json={"name": "openai sdk"})
        assert r.status_code == 201, r.text
        yield KeyUser(http=http, key=r.json()["key"], email=email)


@pytest.fixture
async def carol(served: Served) -> AsyncIterator[KeyUser]:
    async for u in make_user(served, "carol@example.com"):
        yield u


@pytest.fixture
async def dave(served: Served) -> AsyncIterator[KeyUser]:
    async for u in make_user(served, "dave@example.com"):
        yield u
