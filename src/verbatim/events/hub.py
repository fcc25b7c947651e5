"""One LISTEN connection per process, fanned out in memory to every open event stream.

The `job_event` trigger (migration 0012) sends a NOTIFY on channel `verbatim_job_events` for
every committed change of a job's status, progress or stage, from whichever process made it (an
API process cancelling, a worker on another machine reporting progress). A stream subscribes
here for one user; 500 streams cost this one connection, not 500.

The connection is opened with the first subscriber and closed with the last, so a process with
no open stream holds none. When it breaks, every subscription is told to resynchronise from the
database (events sent while nobody listened are not replayed by PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from verbatim.embedded_db import to_libpq_url

log = structlog.get_logger(__name__)

CHANNEL = "verbatim_job_events"
# Events queued for one slow client before it is switched to a resynchronisation instead.
QUEUE_LIMIT = 1000
# Events kept to replay to a subscriber what arrived between its state read and its subscription
# (so a stream needs no second read while the connection listens).
RECENT_LIMIT = 10_000
RESYNC = {"resync": True}


def listen_conninfo(engine: AsyncEngine) -> str:
    """The engine's database as a libpq URL (password included) for the listening connection."""
    return to_libpq_url(engine.url.render_as_string(hide_password=False))


@dataclass(eq=False)
class Subscription:
    user_id: uuid.UUID
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )

    def push(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A client that does not read: drop its backlog, it reads the state from the database.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)


class JobEventHub:
    def __init__(self, conninfo: str, *, reconnect_s: float = 1.0) -> None:
        self.conninfo = conninfo
        self.reconnect_s = reconnect_s
        self._by_user: dict[uuid.UUID, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._recent: deque[tuple[float, dict[str, Any]]] = deque(maxlen=RECENT_LIMIT)
        self._listening_since: float | None = None  # monotonic time LISTEN became active
        self.received = 0  # notifications read (benchmark and tests)
        self.connects = 0

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._by_user.values())

    @property
    def listening(self) -> bool:
        return self._task is not None and not self._task.done() and self._ready.is_set()

    async def subscribe(
        self, user_id: uuid.UUID, *, since: float | None = None, timeout_s: float = 10.0
    ) -> tuple[Subscription, bool]:
        """A subscription to the user's job events, live once this returns (LISTEN is active).

        `since` is the monotonic time before the caller read the state. Returns the subscription
        and whether the events since then are covered (replayed from memory into its queue):
        when not (LISTEN started after `since`), the caller must read the state again."""
        sub = Subscription(user_id)
        self._by_user.setdefault(user_id, set()).add(sub)
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._listen(), name="job-events-listener")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except BaseException:
            await self.unsubscribe(sub)
            raise
        covered = (
            since is not None
            and self._listening_since is not None
            and self._listening_since <= since
            and (
                not self._recent or len(self._recent) < RECENT_LIMIT or self._recent[0][0] <= since
            )
        )
        if covered:
            assert since is not None
            for at, event in self._recent:
                if at >= since and event.get("user_id") == str(user_id):
                    sub.push(event)
        return sub, covered

    async def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_user.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_user[sub.user_id]
        if not self._by_user:
            await self._stop()

    async def close(self) -> None:
        self._by_user.clear()
        await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        self._ready.clear()
        self._listening_since = None
        self._recent.clear()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _listen(self) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connects += 1
                    self._recent.clear()
                    self._listening_since = time.monotonic()
                    self._ready.set()
                    if not first:
                        self._broadcast(RESYNC)  # changes made while we were not listening
                    first = False
                    async for notify in conn.notifies():
                        self._dispatch(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._ready.clear()
                self._listening_since = None
                log.warning("job_events_listener_lost", error=str(exc), retry_in_s=self.reconnect_s)
                first = False
                await asyncio.sleep(self.reconnect_s)

    def _dispatch(self, payload: str) -> None:
        self.received += 1
        try:
            event = json.loads(payload)
            user_id = uuid.UUID(event["user_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("job_event_unreadable", payload=payload[:200])
            return
        self._recent.append((time.monotonic(), event))
        for sub in self._by_user.get(user_id, ()):
            sub.push(event)

    def _broadcast(self, event: dict[str, Any]) -> None:
        for subs in self._by_user.values():
            for sub in subs:
                sub.push(event)
