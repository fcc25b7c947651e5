"""The long-lived objects a process shares: settings, database, storage, queue, engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from verbatim.config import Settings
from verbatim.db import make_autocommit_sessionmaker
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
    # Single statements that need no transaction (authentication): no BEGIN/COMMIT round trips.
    autocommit_sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.autocommit_sessionmaker = make_autocommit_sessionmaker(self.engine)


_current: Services | None = None


def set_services(services: Services | None) -> None:
    global _current
    _current = services


def get_services() -> Services:
    """Tasks run outside requests and find the process's services here."""
    if _current is None:
        raise RuntimeError("services are not initialised in this process")
    return _current
