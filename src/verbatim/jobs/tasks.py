"""Queue housekeeping: bring back jobs whose worker died."""

from __future__ import annotations

import structlog
from procrastinate import JobContext

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
