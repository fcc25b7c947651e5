"""Test harness: one embedded PostgreSQL per session, a fresh database per test (cloned from a
migrated template), real local storage in a temporary directory, and the real tiny.en model in a
warm engine process shared by the session."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager

from verbatim import embedded_db, migrate
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.engines.process_pool import EnginePool
from verbatim.runtime import make_engine_pool

# VERBATIM_TEST_FIXTURES lets a developer try regenerated fixtures before committing them.
FIXTURES = Path(os.environ.get("VERBATIM_TEST_FIXTURES", Path(__file__).parent / "fixtures"))
TEMPLATE_DB = "verbatim_template"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[embedded_db.EmbeddedServer]:
    # Not under pytest's tmp_path: pytest prunes old base temp dirs, which would pull the data
    # directory from under a server still used by a concurrent test session.
    root = Path(tempfile.mkdtemp(prefix="verbatim-test-pg-"))
    server = embedded_db.start(root / "data")
    with psycopg.connect(server.uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    migrate.upgrade(embedded_db.to_sqlalchemy_url(db_uri(server, TEMPLATE_DB)))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def db_uri(server: embedded_db.EmbeddedServer, name: str) -> str:
    return f"postgresql://postgres:@/{name}?host={server.pgdata}"


@pytest.fixture
def database_url(pg_server: embedded_db.EmbeddedServer) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield db_uri(pg_server, name)
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
async def engine_pool() -> AsyncIterator[EnginePool]:
    """One warm engine process for the whole session: the model loads once."""
    pool = make_engine_pool(Settings(env="test"))
    await pool.warm()
    yield pool
    await pool.close()


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "auto_migrate": False,
        "secret_key": "test-secret-" + "x" * 40,
        "log_json": False,
        "worker_heartbeat_s": 1.0,
        "stalled_after_s": 4.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
async def app_client(
    settings: Settings, engine_pool: EnginePool
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, with_worker=True, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://verbatim.test", timeout=60
        ) as client:
            yield client


class ApiUser:
    """A registered user with an authenticated client."""

    def __init__(self, client: httpx.AsyncClient, email: str, token: str) -> None:
        self.client = client
        self.email = email
        self.headers = {"Authorization": f"Bearer {token}"}

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.post(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def put(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.put(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(
            url, headers={**self.headers, **kw.pop("headers", {})}, **kw
        )

    async def upload(self, path: Path, filename: str | None = None) -> httpx.Response:
        with path.open("rb") as fh:
            return await self.post(
                "/api/v1/audio", files={"file": (filename or path.name, fh, "audio/mpeg")}
            )


async def register(client: httpx.AsyncClient, email: str | None = None) -> ApiUser:
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return ApiUser(client, email, r.json()["access_token"])


@pytest.fixture
async def alice(app_client: httpx.AsyncClient) -> ApiUser:
    return await register(app_client, "alice@example.com")


@pytest.fixture
async def bob(app_client: httpx.AsyncClient) -> ApiUser:
    return await register(app_client, "bob@example.com")


async def wait_for_job(user: ApiUser, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll a job until it reaches a terminal status."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = await user.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")


def long_speech(path: Path, seconds: float) -> Path:
    """A WAV of at least `seconds` of speech, made by repeating the speech fixtures with pauses.

    Long enough that a job is still running when a test interferes with it.
    """
    import wave

    import av
    import numpy as np

    def pcm(name: str) -> np.ndarray:
        with av.open(str(FIXTURES / name)) as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
            chunks = [
                r.to_ndarray().reshape(-1)
                for frame in container.decode(audio=0)
                for r in resampler.resample(frame)
            ]
        return np.concatenate(chunks)

    clips = [pcm("speech.wav"), pcm("speech2.wav"), pcm("dialogue.wav")]
    pause = np.zeros(8000, dtype=np.int16)
    parts: list[np.ndarray] = []
    total = 0
    i = 0
    while total < seconds * 16000:
        clip = clips[i % len(clips)]
        parts += [clip, pause]
        total += len(clip) + len(pause)
        i += 1
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.concatenate(parts).astype(np.int16).tobytes())
    return path
