"""Queue entry points for downloads (ids only; logic lives in runner.py)."""

from __future__ import annotations

import uuid

import psycopg
from procrastinate import RetryStrategy
from sqlalchemy.exc import DBAPIError

from verbatim.downloads import runner
from verbatim.queue import DEFAULT_QUEUE, queue
from verbatim.services import get_services


@queue.task(
    name="downloads.fetch",
    queue=DEFAULT_QUEUE,
    # Only transient failures (5xx, resets, database blips) are retried; the rest fail at once.
    retry=RetryStrategy(
        max_attempts=8, exponential_wait=2, retry_exceptions={runner.TransientJobError}
    ),
)
async def fetch_download(job_id: str) -> None:
    try:
        await runner.run(get_services(), uuid.UUID(job_id), fetch_download)
    except (DBAPIError, psycopg.OperationalError) as exc:
        # The database went away mid-job: try again later; a re-run starts the download afresh.
        raise runner.TransientJobError(f"database unavailable: {exc}") from exc
