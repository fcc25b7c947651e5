"""Queue entry points for reprocessing (the job lifecycle runs reprocess.runner.ReprocessJob),
on the same queues as transcriptions: local engines' and cloud providers'."""

from __future__ import annotations

from verbatim.jobs.lifecycle import register
from verbatim.queue import CLOUD_TRANSCRIPTION_QUEUE, TRANSCRIPTION_QUEUE
from verbatim.reprocess.runner import ReprocessJob

reprocess_task = register(
    ReprocessJob(), name="transcriptions.reprocess", queue_name=TRANSCRIPTION_QUEUE
)
run_reprocess = reprocess_task.task

cloud_reprocess_task = register(
    ReprocessJob(), name="transcriptions.reprocess_cloud", queue_name=CLOUD_TRANSCRIPTION_QUEUE
)
run_cloud_reprocess = cloud_reprocess_task.task
