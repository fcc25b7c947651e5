from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import ApiUser, register
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.db import make_engine, make_sessionmaker
from verbatim.embedded_db import to_sqlalchemy_url
from verbatim.engines.process_pool import EnginePool
from verbatim.models import Job, Transcription, UsageEvent
from verbatim.services import get_services

# The database of the last service started: rows stay readable after it stopped.
_database: list[str] = []


@asynccontextmanager
async def _session() -> AsyncIterator[AsyncSession]:
    try:
        services = get_services()  # a running service (its own fixture or ours)
    except RuntimeError:
        services = None
    if services is not None:
        async with services.sessionmaker() as session:
            yield session
        return
    engine = make_engine(to_sqlalchemy_url(_database[-1]), pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()


@asynccontextmanager
async def service(
    settings: Settings, engine_pool: EnginePool | None = None
) -> AsyncIterator[ApiUser]:
    # The settings decide whether this process runs a worker (run_worker_in_api).
    assert settings.database_url is not None
    _database.append(settings.database_url)
    app = create_app(settings, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://verbatim.test", timeout=60
        ) as client:
            yield await register(client)


async def row_counts() -> dict[str, int]:
    async with _session() as session:
        return {
            name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in (
                ("transcription", Transcription),
                ("job", Job),
                ("usage_event", UsageEvent),
            )
        }


async def transcription_row(transcription_id: str) -> Transcription:
    async with _session() as session:
        row = await session.get(Transcription, uuid.UUID(transcription_id))
        assert row is not None
        await session.refresh(row, ["raw_response"])
        return row


async def usage_rows() -> list[UsageEvent]:
    async with _session() as session:
        return list(await session.scalars(select(UsageEvent).order_by(UsageEvent.created_at)))


async def start(user: ApiUser, audio_id: str, **body: Any) -> dict[str, str]:
    r = await user.post(f"/api/v1/audio/{audio_id}/transcriptions", json=body)
    assert r.status_code == 202, r.text
    started: dict[str, str] = r.json()
    return started


async def wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout}s")


class Workers:
    """Worker processes (`verbatim worker`) started by a test, so that one can be SIGKILLed
    mid-job and another started in its place; all their output goes to one log file."""

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        self.log = log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
        self.env.update(
            VERBATIM_ENV="test",
            VERBATIM_DATABASE_URL=str(settings.database_url),
            VERBATIM_DATA_DIR=str(settings.data_dir),
            VERBATIM_AUTO_MIGRATE="false",
            VERBATIM_SECRET_KEY=str(settings.secret_key),
            VERBATIM_WORKER_HEARTBEAT_S="1",
            VERBATIM_STALLED_AFTER_S="4",
            VERBATIM_LOG_JSON="true",
            VERBATIM_ENGINE_POLL_INTERVAL_S="0.1",
        )
        self.env.update(env)
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "verbatim.cli", "worker"],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.started.append(worker)
        return worker

    @staticmethod
    def kill(worker: subprocess.Popen[bytes]) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(timeout=10)


@contextmanager
def workers(settings: Settings, log: Path, **env: str) -> Iterator[Workers]:
    pool = Workers(settings, log, **env)
    try:
        yield pool
    finally:
        pool.stop_all()


# Settings for an API that runs no worker of its own; its workers heartbeat every second and
# a silent one is declared stalled after four, so a killed worker's job is taken over.
KILLABLE: dict[str, Any] = {
    "run_worker_in_api": False,
    "worker_heartbeat_s": 1.0,
    "stalled_after_s": 4.0,
}
