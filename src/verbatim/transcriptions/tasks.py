"""Queue entry points for transcriptions (ids only; logic lives in runner.py)."""

from __future__ import annotations

import uuid

from procrastinate import RetryStrategy

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
    await runner.run(get_services(), uuid.UUID(job_id), run_transcription)
