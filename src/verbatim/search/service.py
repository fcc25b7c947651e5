"""Queueing search indexing, and choosing what a re-index covers.

`queue_index(session, transcription)` is the one way to ask for a transcription's chunks to be
(re)built: call it in the transaction that changes the transcript. The transcription job calls
it when it completes; the transcript editor and reprocessing must call it when they save.
"""

from __future__ import annotations

import uuid

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.jobs.service import defer
from verbatim.models import (
    Job,
    JobStatus,
    JobType,
    Transcription,
    TranscriptionChunk,
    TranscriptionStatus,
)


async def queue_index(session: AsyncSession, transcription: Transcription) -> Job:
    """Queue a `search.index` job for the transcription in the session's transaction.

    A job of this transcription still waiting to start is reused: it reads the transcript
    when it starts, so it will index this version too.
    """
    waiting = await session.scalar(
        select(Job)
        .where(
            Job.transcription_id == transcription.id,
            Job.type == JobType.search_index,
            Job.status == JobStatus.pending,
            Job.attempts == 0,
        )
        .limit(1)
    )
    if waiting is not None:
        return waiting
    job = Job(
        user_id=transcription.user_id,
        tenant_id=transcription.tenant_id,
        type=JobType.search_index,
        audio_file_id=transcription.audio_file_id,
        transcription_id=transcription.id,
        stage="queued",
    )
    session.add(job)
    await session.flush()
    from verbatim.search.tasks import run_index

    await defer(session, job, run_index)
    return job


async def transcriptions_to_reindex(
    session: AsyncSession,
    model: str,
    *,
    everything: bool = False,
    transcription_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Completed transcriptions a re-index covers, oldest first.

    `transcription_id`: that one. `everything`: all. Otherwise those that need it: chunks made
    by another embedding model than `model`, or a transcript with text and no chunks at all
    (completed before indexing existed, or whose index job failed).
    """
    stmt = select(Transcription.id).where(Transcription.status == TranscriptionStatus.completed)
    if transcription_id is not None:
        stmt = stmt.where(Transcription.id == transcription_id)
    elif not everything:
        other_model = exists().where(
            TranscriptionChunk.transcription_id == Transcription.id,
            TranscriptionChunk.embedding_model != model,
        )
        no_chunks = ~exists().where(TranscriptionChunk.transcription_id == Transcription.id)
        has_text = func.length(func.btrim(func.coalesce(Transcription.text, ""))) > 0
        stmt = stmt.where(other_model | (no_chunks & has_text))
    rows = await session.scalars(stmt.order_by(Transcription.created_at, Transcription.id))
    return list(rows)


async def chunk_models(session: AsyncSession) -> dict[str, int]:
    """How many chunks each embedding model made (for `verbatim search reindex` reports)."""
    rows = await session.execute(
        select(TranscriptionChunk.embedding_model, func.count()).group_by(
            TranscriptionChunk.embedding_model
        )
    )
    return {name: count for name, count in rows.tuples()}
