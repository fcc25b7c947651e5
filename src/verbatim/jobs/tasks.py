"""Queue housekeeping: bring back jobs whose worker died; fail jobs whose queue job is gone."""

from __future__ import annotations

import structlog
from procrastinate import JobContext

from verbatim.jobs import reconcile
from verbatim.queue import queue
from verbatim.services import get_services

log = structlog.get_logger(__name__)


@queue.periodic(cron="* * * * * */5", periodic_id="recover_stalled")
@queue.task(name="jobs.recover_stalled", queueing_lock="jobs.recover_stalled", pass_context=True)
async def recover_stalled(context: JobContext, timestamp: int) -> int:
    """Re-queue jobs whose worker stopped sending heartbeats (killed, crashed, lost its host).

    The task that runs again is idempotent: it replaces any partial result in one transaction.
    """
    settings = get_services().settings
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.stalled_after_s)
    count = 0
    for job in stalled:
        log.warning("stalled_job_requeued", queue_job_id=job.id, task=job.task_name)
        await manager.retry_job(job)
        count += 1
    return count


@queue.periodic(cron="* * * * * */30", periodic_id="reconcile_jobs")
@queue.task(name="jobs.reconcile", queueing_lock="jobs.reconcile")
async def reconcile_jobs(timestamp: int) -> int:
    """Fail pending or running jobs whose queue job has ended or disappeared."""
    return await reconcile.fail_orphaned_jobs(get_services())
