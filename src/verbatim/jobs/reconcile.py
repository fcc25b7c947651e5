"""The safety net under the lifecycle: no job row stays pending or running without a queue job.

The lifecycle ends every job it runs; this catches what it cannot see: a queue job failed by
procrastinate after its retries ran out, one deleted by an operator, a row whose task crashed
before the lifecycle could record anything.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import text

from verbatim.db import session_scope
from verbatim.jobs.lifecycle import kind_for
from verbatim.models import Job, JobStatus
from verbatim.models.job import TERMINAL
from verbatim.services import Services
from verbatim.webhooks import events as webhook_events

log = structlog.get_logger(__name__)

# A row this recently changed is left alone for now (its transaction may just have committed).
GRACE_S = 30.0
BATCH = 500

_ORPHANS = text(
    """
    SELECT j.id FROM job j
    LEFT JOIN procrastinate_jobs q ON q.id = j.queue_job_id
    WHERE j.status IN ('pending', 'running')
      AND j.updated_at < now() - make_interval(secs => :grace)
      AND (q.id IS NULL OR q.status NOT IN ('todo', 'doing'))
      -- A multi-engine run's reconcile job waits, unqueued, for its engines' jobs to end.
      AND NOT (coalesce(j.stage, '') = 'waiting_for_engines' AND j.queue_job_id IS NULL)
    ORDER BY j.updated_at
    LIMIT :batch
    """
)


async def fail_orphaned_jobs(services: Services, grace_s: float = GRACE_S) -> int:
    async with session_scope(services.sessionmaker) as session:
        ids = list(await session.scalars(_ORPHANS, {"grace": grace_s, "batch": BATCH}))
    failed = 0
    for job_id in ids:
        if await _fail_one(services, job_id):
            failed += 1
    return failed


async def _fail_one(services: Services, job_id: uuid.UUID) -> bool:
    code, message = "job_lost", "The job stopped without finishing; start it again"
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True, populate_existing=True)
        if job is None or job.status in TERMINAL:
            return False
        # Checked again under the lock: the job may have been re-queued since the scan.
        alive = await session.scalar(
            text("SELECT status IN ('todo', 'doing') FROM procrastinate_jobs WHERE id = :id"),
            {"id": job.queue_job_id},
        )
        if alive:
            return False
        if job.status is JobStatus.pending:
            job.transition(JobStatus.running)
        job.transition(JobStatus.failed)
        job.stage = "failed"
        job.error_code, job.error_message = code, message
        kind = kind_for(job.type)
        if kind is not None:
            await kind.fail(session, job, code, message)
        await webhook_events.job_finished(session, job)
    log.warning("orphaned_job_failed", job_id=str(job_id), code=code)
    return True
