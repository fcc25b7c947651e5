"""The long-lived objects a process shares: settings, database, storage, queue, engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from verbatim.config import Settings
from verbatim.storage import Storage

if TYPE_CHECKING:
    from verbatim.engines.process_pool import EnginePool


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    engine_pool: EnginePool | None = field(default=None)


_current: Services | None = None


def set_services(services: Services | None) -> None:
    global _current
    _current = services


def get_services() -> Services:
    """Tasks run outside requests and find the process's services here."""
    if _current is None:
        raise RuntimeError("services are not initialised in this process")
    return _current
