"""Database engine and sessions. One AsyncEngine per process; sessions commit in one place.

A session takes a pooled connection only when it first runs a statement, and gives it back when
it commits or closes: a request holds a connection only while it talks to the database, never
while it waits for a client (see docs/decisions/0005-request-connections.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Every statement is planned for its own parameters (docs/decisions/0010-library-scale.md).
# psycopg prepares a statement after its fifth execution on a connection, and PostgreSQL then
# may switch to a generic plan: one user's list then runs with the plan that suited another
# (a sequential scan of a 100,000-row library for a user with 100 rows: 0.3 ms became 15 ms).
# Planning a list query costs well under a millisecond.
PLAN_CACHE_MODE = "force_custom_plan"


def make_engine(url: str, pool_size: int = 10, pool_timeout_s: float = 30.0) -> AsyncEngine:
    """The pool holds `pool_size` connections plus as many again under load; a checkout that
    waits `pool_timeout_s` raises `sqlalchemy.exc.TimeoutError` (answered 503 `database_busy`).

    Each new connection gets `plan_cache_mode = force_custom_plan` for its whole life."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout_s,
        pool_pre_ping=True,
    )
    event.listen(engine.sync_engine, "connect", _set_plan_cache_mode)
    return engine


def _set_plan_cache_mode(dbapi_connection: Any, connection_record: Any) -> None:
    # Committed at once: a SET inside a transaction that is later rolled back is undone.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SET plan_cache_mode = {PLAN_CACHE_MODE}")
    finally:
        cursor.close()
    dbapi_connection.commit()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_autocommit_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose statements each commit on their own (the pool's connections, switched to
    autocommit on the client for the checkout and back when returned: no round trip). For a
    unit of work of single statements that needs no transaction around them, such as
    authentication: it saves the BEGIN and COMMIT round trips a transaction costs."""
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )


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
