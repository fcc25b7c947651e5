"""Queue entry point for downloads (the job lifecycle runs runner.DownloadJob)."""

from __future__ import annotations

from verbatim.downloads.runner import DownloadJob
from verbatim.jobs.lifecycle import register
from verbatim.queue import DEFAULT_QUEUE

download_task = register(DownloadJob(), name="downloads.fetch", queue_name=DEFAULT_QUEUE)
fetch_download = download_task.task
