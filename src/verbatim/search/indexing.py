"""Indexing a transcript for search: read it, cut it into chunks, embed them, replace its rows.

Three steps, so the slow one holds no transaction:
1. `read_source` reads the completed transcription and its segments (with a fingerprint of
   what it read);
2. `prepare` chunks and embeds, in batches, reporting progress;
3. `write_chunks`, in the caller's transaction, locks the transcription row, checks that the
   transcript still has the fingerprint it was read with (an edit in between queued another
   index job, which will write the newer text), then deletes its chunks and inserts the new
   ones: readers see the old chunks or the new ones, never a mix.

The `search.index` job (`SearchIndexJob`, on the job lifecycle) and `verbatim search reindex`
both run these steps.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.jobs.lifecycle import JobContext, JobFailed, JobKind
from verbatim.models import (
    Job,
    JobType,
    Segment,
    Transcription,
    TranscriptionChunk,
    TranscriptionStatus,
)
from verbatim.search.chunking import Chunk, SegmentIn, chunk_transcript
from verbatim.search.embedding import embed_passages_async
from verbatim.search.language import ts_config_for

log = structlog.get_logger(__name__)

# Chunks embedded per call (and per progress report).
EMBED_BATCH = 32
# Above this many segments, chunking runs in a thread (it is pure Python).
CHUNK_IN_THREAD_ABOVE = 300

ProgressCallback = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class Source:
    """A completed transcription as read for indexing."""

    transcription_id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    text: str
    ts_config: str
    segments: tuple[SegmentIn, ...]
    fingerprint: str


@dataclass(frozen=True)
class Prepared:
    chunks: list[Chunk]
    vectors: list[list[float]]
    model: str


class NotIndexable(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fingerprint(text: str, segments: Sequence[SegmentIn]) -> str:
    """What the chunks depend on: the text, and each segment's times, text and speaker."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    for seg in segments:
        digest.update(
            json.dumps([seg.start, seg.end, seg.text, seg.speaker], ensure_ascii=False).encode()
        )
        digest.update(str(len(seg.words)).encode())
    return digest.hexdigest()


async def read_source(
    session: AsyncSession, transcription_id: uuid.UUID, *, lock: bool = False
) -> Source:
    """Read a transcription for indexing; `NotIndexable` if it is gone or not completed."""
    stmt = select(Transcription).where(Transcription.id == transcription_id)
    if lock:
        stmt = stmt.with_for_update()
    transcription = await session.scalar(stmt)
    if transcription is None:
        raise NotIndexable("transcription_missing", "The transcription was deleted")
    if transcription.status is not TranscriptionStatus.completed:
        raise NotIndexable(
            "transcription_not_completed",
            f"The transcription is {transcription.status.value}, not completed",
        )
    rows = await session.execute(
        select(Segment.start, Segment.end, Segment.text, Segment.speaker, Segment.words)
        .where(Segment.transcription_id == transcription_id)
        .order_by(Segment.index)
    )
    segments = tuple(
        SegmentIn(start=r.start, end=r.end, text=r.text, speaker=r.speaker, words=r.words or ())
        for r in rows
    )
    text = transcription.text or ""
    return Source(
        transcription_id=transcription.id,
        user_id=transcription.user_id,
        tenant_id=transcription.tenant_id,
        text=text,
        ts_config=ts_config_for(transcription.language or transcription.requested_language),
        segments=segments,
        fingerprint=fingerprint(text, segments),
    )


async def prepare(
    source: Source, settings: Settings, on_progress: ProgressCallback | None = None
) -> Prepared:
    """Chunk and embed (the slow part: no transaction is open)."""
    if len(source.segments) > CHUNK_IN_THREAD_ABOVE:
        chunks = await asyncio.to_thread(chunk_transcript, source.text, source.segments)
    else:
        chunks = chunk_transcript(source.text, source.segments)
    vectors: list[list[float]] = []
    model = ""
    if on_progress is not None:
        await on_progress(0, len(chunks))
    for i in range(0, len(chunks), EMBED_BATCH):
        batch = [c.text for c in chunks[i : i + EMBED_BATCH]]
        name, batch_vectors = await embed_passages_async(batch, settings)
        if model and name != model:  # the model changed under us (a settings reload)
            raise NotIndexable("embedding_model_changed", "The embedding model changed")
        model = name
        vectors.extend(batch_vectors)
        if on_progress is not None:
            await on_progress(len(vectors), len(chunks))
    if not chunks:
        from verbatim.search.embedding import model_name

        model = model_name(settings)
    return Prepared(chunks=chunks, vectors=vectors, model=model)


async def write_chunks(session: AsyncSession, source: Source, prepared: Prepared) -> int | None:
    """Replace the transcription's chunks in the caller's transaction.

    Returns the number of chunks written, or None when the transcript changed (or went away)
    since it was read: nothing is written then.
    """
    try:
        current = await read_source(session, source.transcription_id, lock=True)
    except NotIndexable:
        return None
    if current.fingerprint != source.fingerprint:
        return None
    await session.execute(
        delete(TranscriptionChunk)
        .where(TranscriptionChunk.transcription_id == source.transcription_id)
        .execution_options(synchronize_session=False)
    )
    if prepared.chunks:
        await session.execute(
            insert(TranscriptionChunk),
            [
                {
                    "transcription_id": source.transcription_id,
                    "user_id": current.user_id,
                    "tenant_id": current.tenant_id,
                    "chunk_index": chunk.index,
                    "text": chunk.text,
                    "start_time": chunk.start_time,
                    "end_time": chunk.end_time,
                    "start_char_pos": chunk.start_char_pos,
                    "end_char_pos": chunk.end_char_pos,
                    "speaker": chunk.speaker,
                    "embedding": vector,
                    "embedding_model": prepared.model,
                    "ts_config": source.ts_config,
                    "keywords": chunk.keywords,
                }
                for chunk, vector in zip(prepared.chunks, prepared.vectors, strict=True)
            ],
        )
    return len(prepared.chunks)


class SearchIndexJob(JobKind[Source, Prepared]):
    """The `search.index` job: (re)build one transcription's chunks with the current model."""

    type = JobType.search_index
    stage = "indexing"

    async def claim(self, session: AsyncSession, job: Job) -> Source:
        if job.transcription_id is None:
            raise JobFailed("transcription_missing", "The transcription was deleted")
        try:
            return await read_source(session, job.transcription_id)
        except NotIndexable as exc:
            raise JobFailed(exc.code, exc.message) from exc

    async def work(self, ctx: JobContext, inputs: Source) -> Prepared:
        async def on_progress(done: int, total: int) -> None:
            percent = 100.0 * done / total if total else 0.0
            await ctx.progress(percent, force=done == total, chunks_done=done, chunks_total=total)

        try:
            return await prepare(inputs, ctx.services.settings, on_progress)
        except NotIndexable as exc:
            raise JobFailed(exc.code, exc.message) from exc

    async def complete(
        self,
        ctx: JobContext,
        session: AsyncSession,
        job: Job,
        inputs: Source,
        result: Prepared,
    ) -> None:
        written = await write_chunks(session, inputs, result)
        if written is None:
            # Edited or reprocessed meanwhile: the index job that change queued writes it.
            job.update_detail(stale=True)
            log.info("search_index_stale", transcription_id=str(inputs.transcription_id))
            return
        job.update_detail(chunks=written, embedding_model=result.model)
        # The owner's topics are scored against the new chunks (a job of its own, queued in
        # this transaction; none when the owner has no topics).
        from verbatim.library.topics.service import queue_scoring_after_indexing

        scoring = await queue_scoring_after_indexing(
            session, inputs.transcription_id, inputs.user_id, inputs.tenant_id
        )
        if scoring is not None:
            job.update_detail(topic_scoring_job_id=str(scoring.id))
        log.info(
            "search_indexed",
            transcription_id=str(inputs.transcription_id),
            chunks=written,
            model=result.model,
        )
