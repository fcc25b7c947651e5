from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
