"""Database engine and sessions. One AsyncEngine per process; sessions commit in one place.

A session takes a pooled connection only when it first runs a statement, and gives it back when
it commits or closes: a request holds a connection only while it talks to the database, never
while it waits for a client (see docs/decisions/0005-request-connections.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def make_engine(url: str, pool_size: int = 10, pool_timeout_s: float = 30.0) -> AsyncEngine:
    """The pool holds `pool_size` connections plus as many again under load; a checkout that
    waits `pool_timeout_s` raises `sqlalchemy.exc.TimeoutError` (answered 503 `database_busy`)."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A unit of work for tasks and scripts: commit on success, roll back on error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
