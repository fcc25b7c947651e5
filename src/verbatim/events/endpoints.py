"""Server-sent events: one job's progress until it ends, or every job of the caller."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from sse_starlette import EventSourceResponse

from verbatim.deps import CurrentUser, ServicesDep, SessionDep
from verbatim.events import service
from verbatim.events.hub import JobEventHub
from verbatim.jobs.service import get_job
from verbatim.tenancy.scope import tenant_of

router = APIRouter(prefix="/api/v1", tags=["events"])

SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "A stream of `job` events"}
}


async def _ended_quietly(stream: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """A stream that cannot go on (the database is unreachable) ends cleanly; an EventSource
    reconnects with its Last-Event-ID and resumes."""
    try:
        async for event in stream:
            yield event
    except service.StreamInterrupted:
        return


def _hub(request: Request) -> JobEventHub:
    hub: JobEventHub = request.app.state.job_events
    return hub


@router.get(
    "/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses={**SSE_RESPONSE, 204: {"description": "The job ended before the given event id"}},
)
async def job_events(
    job_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Status, progress and stage of one job as server-sent events (`event: job`), until the
    job ends; a comment line every `VERBATIM_EVENTS_HEARTBEAT_S`. Send `Last-Event-ID` to
    resume: the current state comes first if it changed since that event."""
    read_at = time.monotonic()
    job = await get_job(session, user, job_id)  # 404 for another user's job
    last_seq = service.parse_last_event_id(last_event_id)
    if last_seq is not None and job.status in service.TERMINAL_VALUES and job.event_seq <= last_seq:
        # Nothing left to send: 204 tells an EventSource not to reconnect.
        return Response(status_code=204)
    # The state is read here, in the request's short transaction: a busy pool is a clean 503,
    # and the stream itself holds no connection.
    stream = service.job_stream(
        _hub(request),
        services.sessionmaker,
        job.user_id,  # the owner's events: a member watching another member's job sees it
        job.id,
        last_seq,
        service.job_event(job),
        read_at,
    )
    return EventSourceResponse(_ended_quietly(stream), ping=services.settings.events_heartbeat_s)


@router.get("/events", response_class=EventSourceResponse, responses=SSE_RESPONSE)
async def user_events(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Every change of your jobs in the active tenant as server-sent events (`event: job`),
    open until you close it. Without `Last-Event-ID` it starts with the jobs still pending or
    running; with one, with each job changed since (its current state, most recent 1,000)."""
    last_seq = service.parse_last_event_id(last_event_id)
    read_at = time.monotonic()
    tenant = tenant_of(user)
    initial = await service.changed_since(session, user.id, tenant, last_seq)
    stream = service.user_stream(
        _hub(request), services.sessionmaker, user.id, last_seq, initial, read_at, tenant
    )
    return EventSourceResponse(_ended_quietly(stream), ping=services.settings.events_heartbeat_s)
