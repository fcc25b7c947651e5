"""Queue entry points of the library's job types (run by the job lifecycle)."""

from __future__ import annotations

from verbatim.jobs.lifecycle import register
from verbatim.library.collections.export_job import CollectionExportJob
from verbatim.library.topics.scoring import TopicScoringJob
from verbatim.queue import DEFAULT_QUEUE

collection_export_task = register(
    CollectionExportJob(), name="collections.export", queue_name=DEFAULT_QUEUE
)
export_collection = collection_export_task.task

topic_scoring_task = register(TopicScoringJob(), name="topics.score", queue_name=DEFAULT_QUEUE)
score_topics = topic_scoring_task.task
