"""The event streams: the state a client missed, read from the database, then live events.

An event id is the job's `event_seq`: the number the job_event trigger took from one sequence
for the change. Per job it grows with every change (the row lock orders them), so
`Last-Event-ID` resumes a job stream exactly. Events are states, not deltas: a resumed client
gets each job's current state once, not every progress step it missed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from verbatim.db import session_scope
from verbatim.events.hub import JobEventHub, Subscription
from verbatim.models import Job, JobStatus

log = structlog.get_logger(__name__)

TERMINAL_VALUES = frozenset({JobStatus.completed, JobStatus.failed, JobStatus.cancelled})
# At most this many jobs are replayed on a resume of /events (the most recently changed).
RESUME_LIMIT = 1000


def job_event(job: Job) -> dict[str, Any]:
    """The same fields the trigger's NOTIFY carries."""
    return {
        "seq": job.event_seq,
        "id": str(job.id),
        "user_id": str(job.user_id),
        "tenant_id": str(job.tenant_id),
        "type": job.type.value,
        "status": job.status.value,
        "progress": job.progress,
        "stage": job.stage,
        "error_code": job.error_code,
        "audio_file_id": str(job.audio_file_id) if job.audio_file_id else None,
        "transcription_id": str(job.transcription_id) if job.transcription_id else None,
    }


def to_sse(event: dict[str, Any]) -> dict[str, Any]:
    public = {k: v for k, v in event.items() if k not in ("user_id", "tenant_id", "seq")}
    return {"event": "job", "id": str(event["seq"]), "data": json.dumps(public)}


def parse_last_event_id(value: str | None) -> int | None:
    """Our ids are decimal integers; anything else is treated as no id (start afresh)."""
    if value is None or not value.strip().isdigit() or len(value.strip()) > 19:
        return None
    return int(value.strip())


def is_terminal(event: dict[str, Any]) -> bool:
    return event["status"] in {s.value for s in TERMINAL_VALUES}


class StreamInterrupted(Exception):
    """The state cannot be read now: end the stream; the client reconnects with its last id."""


async def _read_job(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID
) -> dict[str, Any] | None:
    try:
        async with session_scope(sessionmaker) as session:
            job = await session.get(Job, job_id)
            return job_event(job) if job is not None else None
    except Exception as exc:
        log.warning("job_events_read_failed", error=str(exc))
        raise StreamInterrupted from exc


async def _subscribe(
    hub: JobEventHub, user_id: uuid.UUID, read_at: float
) -> tuple[Subscription, bool]:
    try:
        return await hub.subscribe(user_id, since=read_at)
    except (TimeoutError, OSError) as exc:
        log.warning("job_events_listen_failed", error=str(exc))
        raise StreamInterrupted from exc


async def job_stream(
    hub: JobEventHub,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    job_id: uuid.UUID,
    last_seq: int | None,
    initial: dict[str, Any],
    read_at: float,
) -> AsyncIterator[dict[str, Any]]:
    """One job's events until it ends. `initial` is the state the endpoint read at `read_at`;
    the hub replays what arrived since, or (when it was not listening then) the state is read
    again once subscribed. Duplicates are dropped by number."""
    sub, covered = await _subscribe(hub, user_id, read_at)
    try:
        sent = -1 if last_seq is None else last_seq
        event: dict[str, Any] | None = initial if covered else await _read_job(sessionmaker, job_id)
        while True:
            if event is not None and event.get("resync"):
                event = await _read_job(sessionmaker, job_id)
            if event is None:
                return  # the job was deleted
            if event["id"] == str(job_id):
                if event["seq"] > sent:
                    sent = event["seq"]
                    yield to_sse(event)
                if is_terminal(event):
                    return
            event = await sub.queue.get()
    finally:
        await hub.unsubscribe(sub)


async def changed_since(
    session: AsyncSession, user_id: uuid.UUID, tenant_id: uuid.UUID, since: int | None
) -> list[dict[str, Any]]:
    """The user's jobs in one tenant changed after event `since` (None: the jobs still pending
    or running)."""
    stmt = select(Job).where(Job.user_id == user_id, Job.tenant_id == tenant_id)
    if since is None:
        stmt = stmt.where(Job.status.in_([JobStatus.pending, JobStatus.running]))
    else:
        stmt = stmt.where(Job.event_seq > since)
    stmt = stmt.order_by(Job.event_seq.desc()).limit(RESUME_LIMIT)
    jobs = (await session.scalars(stmt)).all()
    return [job_event(job) for job in reversed(jobs)]


async def _changed_since(
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    since: int | None,
) -> list[dict[str, Any]]:
    try:
        async with session_scope(sessionmaker) as session:
            return await changed_since(session, user_id, tenant_id, since)
    except Exception as exc:
        log.warning("job_events_read_failed", error=str(exc))
        raise StreamInterrupted from exc


async def user_stream(
    hub: JobEventHub,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    last_seq: int | None,
    initial: list[dict[str, Any]],
    read_at: float,
    tenant_id: uuid.UUID,
) -> AsyncIterator[dict[str, Any]]:
    """Every job of one user in the request's tenant (a personal library and an organisation
    never mix): `initial` (what changed since `last_seq`, or the active jobs, as the endpoint
    read it at `read_at`), then live."""
    sub, covered = await _subscribe(hub, user_id, read_at)
    tenant = str(tenant_id)
    try:
        seen: dict[str, int] = {}  # per job, the last event number sent
        high = last_seq if last_seq is not None else 0
        batch = (
            initial if covered else await _changed_since(sessionmaker, user_id, tenant_id, last_seq)
        )
        while True:
            for event in batch:
                if event.get("resync"):
                    continue
                if event.get("tenant_id") != tenant:
                    continue
                if event["seq"] > seen.get(event["id"], -1) and (
                    last_seq is None or event["seq"] > last_seq
                ):
                    seen[event["id"]] = event["seq"]
                    high = max(high, event["seq"])
                    yield to_sse(event)
            event = await sub.queue.get()
            if event.get("resync"):
                batch = await _changed_since(sessionmaker, user_id, tenant_id, high)
            else:
                batch = [event]
    finally:
        await hub.unsubscribe(sub)
