"""Queue entry point for transcriptions (the job lifecycle runs runner.TranscriptionJob)."""

from __future__ import annotations

from verbatim.jobs.lifecycle import register
from verbatim.queue import TRANSCRIPTION_QUEUE
from verbatim.transcriptions.runner import TranscriptionJob

transcription_task = register(
    TranscriptionJob(), name="transcriptions.run", queue_name=TRANSCRIPTION_QUEUE
)
run_transcription = transcription_task.task
