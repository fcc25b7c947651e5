"""Webhook events: each one written as delivery rows, with their jobs queued, in the
transaction of the change it reports, so a message exists if and only if its event committed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.jobs.service import defer
from verbatim.models import Job, JobStatus, JobType, Transcription
from verbatim.models.base import utcnow
from verbatim.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "audio.created",
    "download.completed",
    "download.failed",
    "transcription.completed",
    "transcription.failed",
    "search.indexed",
    "job.progress",
)
# Sent only to endpoints that list them (an endpoint created without `events` gets the rest).
OPT_IN = frozenset({"job.progress"})
DEFAULT_EVENTS = tuple(e for e in EVENT_TYPES if e not in OPT_IN)
TEST_EVENT = "webhook.test"

_FINISHED: dict[tuple[JobType, JobStatus], str] = {
    (JobType.download, JobStatus.completed): "download.completed",
    (JobType.download, JobStatus.failed): "download.failed",
    (JobType.transcription, JobStatus.completed): "transcription.completed",
    (JobType.transcription, JobStatus.failed): "transcription.failed",
    (JobType.search_index, JobStatus.completed): "search.indexed",
    # A multi-engine transcript is finished by its reconcile job (decision 0024), and a
    # reprocess completes a new version of it (a failed one leaves the transcript as it was).
    (JobType.transcription_reconcile, JobStatus.completed): "transcription.completed",
    (JobType.transcription_reconcile, JobStatus.failed): "transcription.failed",
    (JobType.reprocess, JobStatus.completed): "transcription.completed",
}


def message(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The body Standard Webhooks suggests: type, timestamp, data."""
    return {"type": event_type, "timestamp": utcnow().isoformat(), "data": data}


async def queue_delivery(session: AsyncSession, delivery: WebhookDelivery) -> None:
    """A job for the delivery, queued in the session's transaction."""
    from verbatim.webhooks.tasks import deliver  # the task module imports the lifecycle

    job = Job(
        type=JobType.webhook_delivery,
        user_id=delivery.user_id,
        tenant_id=delivery.tenant_id,
        payload={"delivery_id": str(delivery.id)},
    )
    session.add(job)
    await session.flush()
    delivery.job_id = job.id
    delivery.status = DeliveryStatus.pending
    await defer(session, job, deliver.task)


async def deliver_to(
    session: AsyncSession, endpoint: WebhookEndpoint, event_type: str, data: dict[str, Any]
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        endpoint_id=endpoint.id,
        user_id=endpoint.user_id,
        tenant_id=endpoint.tenant_id,
        event_type=event_type,
        payload=message(event_type, data),
        status=DeliveryStatus.pending,
        attempts=0,
        attempt_log=[],
    )
    session.add(delivery)
    await session.flush()
    await queue_delivery(session, delivery)
    return delivery


async def emit(
    session: AsyncSession,
    user_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
) -> int:
    """Queue `event_type` for every enabled endpoint of the user that wants it; returns how
    many. One indexed query when the user has no endpoint."""
    endpoints = (
        await session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.user_id == user_id,
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.events.contains([event_type]),
            )
        )
    ).all()
    for endpoint in endpoints:
        await deliver_to(session, endpoint, event_type, data)
    return len(endpoints)


def job_data(job: Job) -> dict[str, Any]:
    return {
        "job_id": str(job.id),
        "job_type": job.type.value,
        "status": job.status.value,
        "progress": job.progress,
        "stage": job.stage,
        "audio_file_id": str(job.audio_file_id) if job.audio_file_id else None,
        "transcription_id": str(job.transcription_id) if job.transcription_id else None,
        "error_code": job.error_code,
        "error_message": job.error_message,
    }


async def job_finished(session: AsyncSession, job: Job) -> None:
    """download/transcription completed or failed, search.indexed: in the job's final
    transaction (called by the lifecycle after it set the final status)."""
    event_type = _FINISHED.get((job.type, job.status))
    if event_type is not None:
        if job.type is JobType.transcription and await _is_engine_child(session, job):
            return  # one engine's run of a multi-engine transcript: the parent's event says it
        await session.flush()  # the job's final columns, for job_data
        await emit(session, job.user_id, event_type, job_data(job))


async def _is_engine_child(session: AsyncSession, job: Job) -> bool:
    if job.transcription_id is None:
        return False
    parent = await session.scalar(
        select(Transcription.parent_id).where(Transcription.id == job.transcription_id)
    )
    return parent is not None


async def job_progressed(session: AsyncSession, job: Job) -> None:
    if job.type is not JobType.webhook_delivery:
        await emit(session, job.user_id, "job.progress", job_data(job))
