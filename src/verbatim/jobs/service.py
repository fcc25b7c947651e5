"""The user-visible record of work: listing, reading, cancelling; status changes for tasks."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from verbatim.errors import Conflict, NotFound
from verbatim.kit.pagination import KeysetPage, PageRequest, keyset_paginate
from verbatim.models import Job, JobStatus, JobType, Transcription, TranscriptionStatus, User
from verbatim.models.job import TERMINAL
from verbatim.queue import queue, raw_connection
from verbatim.tenancy.scope import visible

log = structlog.get_logger(__name__)

# Job types that do not take a user's running slot (JobKind.limited_per_user is False).
UNLIMITED_TYPES = (JobType.webhook_delivery,)


def owned_jobs(user: User) -> Select[Job]:
    return select(Job).where(visible(Job, user))


async def get_job(session: AsyncSession, user: User, job_id: uuid.UUID) -> Job:
    job = await session.scalar(owned_jobs(user).where(Job.id == job_id))
    if job is None:
        raise NotFound("Job not found", code="job_not_found")
    return job


# What a list item shows (JobOut; payload carries its detail): not the queue's id nor owners.
LIST_COLUMNS = (
    Job.type,
    Job.status,
    Job.progress,
    Job.stage,
    Job.attempts,
    Job.error_code,
    Job.error_message,
    Job.audio_file_id,
    Job.transcription_id,
    Job.payload,
    Job.created_at,
    Job.started_at,
    Job.finished_at,
    Job.updated_at,
)


async def list_jobs(
    session: AsyncSession,
    user: User,
    *,
    status: JobStatus | None,
    type: JobType | None,
    page: PageRequest,
) -> KeysetPage:
    """Newest first, a keyset page at a time (ix_job_user[_status|_type]_created)."""
    stmt = owned_jobs(user).options(load_only(*LIST_COLUMNS))
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if type is not None:
        stmt = stmt.where(Job.type == type)
    return await keyset_paginate(session, stmt, page, Job.created_at, Job.id)


async def cancel_job(session: AsyncSession, user: User, job_id: uuid.UUID) -> Job:
    job = await session.scalar(owned_jobs(user).where(Job.id == job_id).with_for_update())
    if job is None:
        raise NotFound("Job not found", code="job_not_found")
    if job.status in TERMINAL:
        raise Conflict(f"The job is already {job.status.value}", code="job_not_cancellable")
    await mark_cancelled(session, job)
    return job


async def mark_cancelled(session: AsyncSession, job: Job) -> None:
    """Cancel in the database (which running tasks watch) and ask the queue to abort."""
    job.transition(JobStatus.cancelled)
    job.stage = "cancelled"
    if job.transcription_id is not None:
        from verbatim.reconciliation import service as multi

        if job.type is JobType.transcription_reconcile:
            # The engines' runs first (their rows are locked before the parent's, as a child
            # ending locks its own rows and then the parent's: no deadlock).
            await multi.cancel_children(session, job.transcription_id)
        transcription = await session.get(Transcription, job.transcription_id)
        if transcription is not None and transcription.status not in (
            TranscriptionStatus.completed,
            TranscriptionStatus.failed,
        ):
            transcription.status = TranscriptionStatus.cancelled
            if transcription.parent_id is not None:
                await multi.child_ended(session, transcription)
    if job.queue_job_id is not None:
        await session.flush()
        await queue.job_manager.cancel_job_by_id_async(
            job.queue_job_id, abort=True, connection=await raw_connection(session)
        )


async def user_at_running_limit(session: AsyncSession, job: Job, limit: int) -> bool:
    """Whether the job's user already runs `limit` other jobs.

    Locks the user's row first, so one user's jobs start one at a time and the count is exact
    across any number of workers (the lock lasts until the caller's transaction ends).
    """
    await session.execute(select(User.id).where(User.id == job.user_id).with_for_update())
    running = await session.scalar(
        select(func.count()).where(
            Job.user_id == job.user_id,
            Job.status == JobStatus.running,
            Job.id != job.id,
            Job.type.not_in(UNLIMITED_TYPES),
        )
    )
    return (running or 0) >= limit


async def defer(
    session: AsyncSession, job: Job, task: Any, *, schedule_in: float | None = None
) -> None:
    """Queue the task for this job inside the session's transaction (both commit or neither)."""
    options: dict[str, Any] = {"connection": await raw_connection(session)}
    if schedule_in is not None:
        options["schedule_in"] = {"seconds": schedule_in}
    job.queue_job_id = await task.configure(**options).defer_async(job_id=str(job.id))
