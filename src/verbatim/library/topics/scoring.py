"""The topic scoring job (`topics.score`): which of a user's topics each indexed transcription
is about, with the passages that say so.

A topic's text (name, then description) is embedded with the embedder that indexed the chunks
(search/embedding.py, same model). For every transcription in scope, its chunks of that model
are compared with the topic by cosine similarity, exactly (no index: a transcription has tens
of chunks); the best `PASSAGES` are kept. A transcription whose best passage reaches
`VERBATIM_TOPIC_THRESHOLD` gets a suggestion: `ai_confidence` is that best similarity, and
`ai_reasoning` quotes the matching passages with their timestamps (`ai_passages` has them as
data, for links that play from that second).

Scope: one transcription against all its owner's topics (queued when indexing completes), or one
topic against all its owner's completed transcriptions (queued when the topic is created or its
text changes).

Writes, in the transaction that completes the job:
- a suggestion is inserted, or refreshed when it is still a suggestion; an accepted assignment
  keeps its status (its AI fields are refreshed); a rejected one is never touched, so a rejected
  topic is never suggested again for that transcription;
- a suggestion that no longer reaches the threshold (the topic's text changed, the transcript
  was edited) is removed;
- a topic whose text changed since the job started (its `version`) is skipped: the job queued by
  that change writes instead.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.db import session_scope
from verbatim.jobs.lifecycle import JobContext, JobKind
from verbatim.models import (
    AssignedBy,
    AssignmentStatus,
    Job,
    JobType,
    Topic,
    Transcription,
    TranscriptionStatus,
    TranscriptionTopic,
)
from verbatim.models.base import utcnow
from verbatim.search.embedding import embed_passages_async

log = structlog.get_logger(__name__)

PASSAGES = 3  # best passages kept per (transcription, topic)
QUOTE_CHARS = 240  # a quoted passage is shortened to about this, around its best sentence
BATCH = 500  # transcriptions per similarity query, rows per insert or delete

Embed = Callable[[list[str]], Awaitable[tuple[str, list[list[float]]]]]


@dataclass(frozen=True)
class TopicText:
    id: uuid.UUID
    version: int
    name: str
    description: str | None

    @property
    def text(self) -> str:
        """What is embedded: the name, then the description."""
        return f"{self.name}. {self.description}" if self.description else self.name


@dataclass
class Inputs:
    # The job's tenant: topics, transcriptions and chunks of that one library.
    tenant_id: uuid.UUID
    topics: list[TopicText]
    transcription_ids: list[uuid.UUID]


@dataclass
class Scored:
    threshold: float
    embedding_model: str | None = None
    # (transcription, topic) -> best passages; for every pair whose transcription had chunks.
    passages: dict[tuple[uuid.UUID, uuid.UUID], list[dict[str, Any]]] = field(default_factory=dict)


T = TypeVar("T")


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    """Slices of at most `size`: statements stay far below PostgreSQL's 65,535 parameters."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def clock(seconds: float) -> str:
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+", re.UNICODE)


def _words(value: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(value) if len(w) > 2}


def quote(passage: str, topic_text: str, max_chars: int = QUOTE_CHARS) -> str:
    """The passage, shortened to about max_chars around the sentence sharing most words with
    the topic (the first sentence when none does)."""
    passage = " ".join(passage.split())
    if len(passage) <= max_chars:
        return passage
    sentences = [s for s in _SENTENCE.split(passage) if s]
    wanted = _words(topic_text)
    best = max(range(len(sentences)), key=lambda i: (len(_words(sentences[i]) & wanted), -i))
    start = best
    end = best + 1
    text_ = sentences[best]
    # Grow with the following, then the preceding sentences while they fit.
    while True:
        grown = False
        if end < len(sentences) and len(text_) + 1 + len(sentences[end]) <= max_chars:
            text_ = f"{text_} {sentences[end]}"
            end += 1
            grown = True
        if start > 0 and len(text_) + 1 + len(sentences[start - 1]) <= max_chars:
            text_ = f"{sentences[start - 1]} {text_}"
            start -= 1
            grown = True
        if not grown:
            break
    if len(text_) > max_chars:
        text_ = text_[:max_chars].rsplit(" ", 1)[0]
        end = len(sentences) + 1  # cut: mark it
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(sentences) or end > len(sentences) else ""
    return f"{prefix}{text_}{suffix}"


def reasoning(topic: TopicText, passages: list[dict[str, Any]], threshold: float) -> str:
    quoted = [p for p in passages if p["similarity"] >= threshold] or passages[:1]
    parts = [
        f'[{clock(p["start_time"])}-{clock(p["end_time"])}] "{p["text"]}" '
        f"(similarity {p['similarity']:.2f})"
        for p in quoted
    ]
    label = "passage matches" if len(quoted) == 1 else "passages match"
    return f'{len(quoted)} {label} the topic "{topic.name}": ' + "; ".join(parts)


_SIMILAR_CHUNKS = text(
    """
    SELECT transcription_id, chunk_index, start_time, end_time, text, similarity
    FROM (
        SELECT d.*, row_number() OVER (
                   PARTITION BY d.transcription_id ORDER BY d.similarity DESC, d.chunk_index
               ) AS rank
        FROM (
            -- every chunk's similarity computed once, exactly (never the HNSW index)
            SELECT c.transcription_id, c.chunk_index, c.start_time, c.end_time, c.text,
                   1 - (c.embedding <=> CAST(:vector AS vector)) AS similarity
            FROM transcription_chunk c
            WHERE c.transcription_id = ANY(CAST(:ids AS uuid[]))
              AND c.tenant_id = :tenant_id
              AND c.embedding_model = :model
        ) d
    ) ranked
    WHERE rank <= :k
    """
)


async def best_passages(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    transcription_ids: list[uuid.UUID],
    vector: Sequence[float],
    model: str,
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    literal = vector_literal(vector)
    for i in range(0, len(transcription_ids), BATCH):
        rows = await session.execute(
            _SIMILAR_CHUNKS,
            {
                "ids": transcription_ids[i : i + BATCH],
                "vector": literal,
                "tenant_id": tenant_id,
                "model": model,
                "k": PASSAGES,
            },
        )
        for tid, chunk_index, start, end, passage, similarity in rows:
            found.setdefault(tid, []).append(
                {
                    "chunk_index": int(chunk_index),
                    "start_time": round(float(start), 3),
                    "end_time": round(float(end), 3),
                    "text": passage,
                    "similarity": round(float(similarity), 4),
                }
            )
    return found


class TopicScoringJob(JobKind[Inputs, Scored]):
    type = JobType.topic_scoring
    stage = "scoring"

    def __init__(self, embed: Embed | None = None) -> None:
        self._embed = embed

    async def claim(self, session: AsyncSession, job: Job) -> Inputs:
        topics = select(Topic).where(Topic.tenant_id == job.tenant_id)
        transcriptions = select(Transcription.id).where(
            Transcription.tenant_id == job.tenant_id,
            Transcription.status == TranscriptionStatus.completed,
        )
        if "topic_id" in job.payload:
            topics = topics.where(Topic.id == uuid.UUID(str(job.payload["topic_id"])))
        else:
            tid = uuid.UUID(str(job.payload["transcription_id"]))
            transcriptions = transcriptions.where(Transcription.id == tid)
        found = list(await session.scalars(topics.order_by(Topic.created_at, Topic.id)))
        ids = list(await session.scalars(transcriptions.order_by(Transcription.id)))
        return Inputs(
            tenant_id=job.tenant_id,
            topics=[TopicText(t.id, t.version, t.name, t.description) for t in found],
            # A topic deleted, or a transcription deleted or reprocessing: nothing to score.
            transcription_ids=ids if found else [],
        )

    async def work(self, ctx: JobContext, inputs: Inputs) -> Scored:
        settings = ctx.services.settings
        scored = Scored(threshold=settings.topic_threshold)
        if not inputs.topics or not inputs.transcription_ids:
            return scored
        texts = [t.text for t in inputs.topics]
        if self._embed is not None:
            model, vectors = await self._embed(texts)
        else:
            # The search embedder, loaded once in this worker: the chunks' model.
            model, vectors = await embed_passages_async(texts, settings)
        scored.embedding_model = model
        for n, (topic, vector) in enumerate(zip(inputs.topics, vectors, strict=True)):
            await ctx.progress(100.0 * n / len(inputs.topics))
            async with session_scope(ctx.services.sessionmaker) as session:
                found = await best_passages(
                    session, inputs.tenant_id, inputs.transcription_ids, vector, model
                )
            for tid, passages in found.items():
                for p in passages:
                    p["text"] = quote(p["text"], topic.text)
                scored.passages[(tid, topic.id)] = passages
        return scored

    async def complete(
        self, ctx: JobContext, session: AsyncSession, job: Job, inputs: Inputs, result: Scored
    ) -> None:
        topics = {t.id: t for t in inputs.topics}
        # Topics whose text is still the one scored; locked against deletion until commit.
        current = {
            tid
            for tid, version in await session.execute(
                select(Topic.id, Topic.version)
                .where(Topic.id.in_(list(topics)))
                .with_for_update(read=True, key_share=True)
            )
            if topics[tid].version == version
        }
        # Transcriptions still there, locked against deletion until commit.
        alive: set[uuid.UUID] = set()
        for ids in batches(sorted({tid for tid, _ in result.passages})):
            alive |= set(
                await session.scalars(
                    select(Transcription.id)
                    .where(Transcription.id.in_(ids))
                    .with_for_update(read=True, key_share=True)
                )
            )
        now = utcnow()
        suggestions: list[dict[str, Any]] = []
        below: list[tuple[uuid.UUID, uuid.UUID]] = []
        for (tid, topic_id), passages in result.passages.items():
            if topic_id not in current or tid not in alive:
                continue
            best = passages[0]["similarity"] if passages else 0.0
            if best < result.threshold:
                below.append((tid, topic_id))
                continue
            topic = topics[topic_id]
            suggestions.append(
                {
                    "transcription_id": tid,
                    "topic_id": topic_id,
                    "status": AssignmentStatus.suggested,
                    "assigned_by": AssignedBy.ai,
                    "user_reviewed": False,
                    "ai_confidence": round(min(1.0, max(0.0, best)), 4),
                    "ai_reasoning": reasoning(topic, passages, result.threshold),
                    "ai_passages": passages,
                    "topic_version": topic.version,
                    "embedding_model": result.embedding_model,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for rows in batches(suggestions):
            stmt = insert(TranscriptionTopic).values(rows)
            refreshed = {
                c: stmt.excluded[c]
                for c in (
                    "ai_confidence",
                    "ai_reasoning",
                    "ai_passages",
                    "topic_version",
                    "embedding_model",
                    "updated_at",
                )
            }
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["transcription_id", "topic_id"],
                    set_=refreshed,
                    # A rejection is the user's word: never overwritten, never re-suggested.
                    where=TranscriptionTopic.status != AssignmentStatus.rejected,
                )
            )
        for pairs in batches(below):
            await session.execute(
                delete(TranscriptionTopic).where(
                    tuple_(TranscriptionTopic.transcription_id, TranscriptionTopic.topic_id).in_(
                        pairs
                    ),
                    TranscriptionTopic.status == AssignmentStatus.suggested,
                )
            )
        job.update_detail(
            topics=len(current),
            transcriptions=len(inputs.transcription_ids),
            suggested=len(suggestions),
            threshold=result.threshold,
            embedding_model=result.embedding_model,
        )
        log.info(
            "topics_scored",
            topics=len(current),
            transcriptions=len(inputs.transcription_ids),
            suggested=len(suggestions),
        )
