"""Queue entry point for transcriptions (the job lifecycle runs runner.TranscriptionJob)."""

from __future__ import annotations

from verbatim.jobs.lifecycle import register
from verbatim.queue import CLOUD_TRANSCRIPTION_QUEUE, TRANSCRIPTION_QUEUE
from verbatim.transcriptions.runner import TranscriptionJob

transcription_task = register(
    TranscriptionJob(), name="transcriptions.run", queue_name=TRANSCRIPTION_QUEUE
)
run_transcription = transcription_task.task

# The same job type on the cloud engines' queue (transcriptions/cloud_runner.py does the work).
cloud_transcription_task = register(
    TranscriptionJob(), name="transcriptions.run_cloud", queue_name=CLOUD_TRANSCRIPTION_QUEUE
)
run_cloud_transcription = cloud_transcription_task.task
