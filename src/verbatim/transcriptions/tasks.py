"""Queue entry points for transcriptions (ids only; logic lives in runner.py)."""

from __future__ import annotations

import uuid

import psycopg
from procrastinate import RetryStrategy
from sqlalchemy.exc import DBAPIError

from verbatim.queue import TRANSCRIPTION_QUEUE, queue
from verbatim.services import get_services
from verbatim.transcriptions import runner


@queue.task(
    name="transcriptions.run",
    queue=TRANSCRIPTION_QUEUE,
    # Only transient failures are retried; a broken input fails at once.
    retry=RetryStrategy(
        max_attempts=8, exponential_wait=2, retry_exceptions={runner.TransientJobError}
    ),
)
async def run_transcription(job_id: str) -> None:
    try:
        await runner.run(get_services(), uuid.UUID(job_id), run_transcription)
    except (DBAPIError, psycopg.OperationalError, ConnectionError) as exc:
        # The database went away mid-job: try again later; the re-run replaces partial work.
        raise runner.TransientJobError(f"database unavailable: {exc}") from exc
