"""Queue entry point for search indexing (the job lifecycle runs indexing.SearchIndexJob)."""

from __future__ import annotations

from verbatim.jobs.lifecycle import register
from verbatim.queue import DEFAULT_QUEUE
from verbatim.search.indexing import SearchIndexJob

index_task = register(SearchIndexJob(), name="search.index", queue_name=DEFAULT_QUEUE)
run_index = index_task.task
