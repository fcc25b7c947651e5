"""Queueing search indexing, and choosing what a re-index covers.

`queue_index(session, transcription)` is the one way to ask for a transcription's chunks to be
(re)built: call it in the transaction that changes the transcript. The transcription job calls
it when it completes; the transcript editor and reprocessing must call it when they save.

`search(...)` answers GET /api/v1/search: filter ids are checked first (another user's
collection, topic or audio file is a 404, like an id that does not exist), then one SQL query
(`search.query`) fuses the semantic and full-text candidates, with ownership inside it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import exists, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.errors import NotFound, ValidationFailed
from verbatim.jobs.service import defer
from verbatim.models import (
    AudioFile,
    Collection,
    Job,
    JobStatus,
    JobType,
    Topic,
    Transcription,
    TranscriptionChunk,
    TranscriptionStatus,
    User,
)
from verbatim.search import highlight
from verbatim.search.language import TS_CONFIGS
from verbatim.search.query import Filters, SearchSql, build
from verbatim.search.schemas import SearchMode
from verbatim.tenancy.scope import access_of, visible


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
    stmt = select(Transcription.id).where(
        Transcription.status == TranscriptionStatus.completed,
        Transcription.parent_id.is_(None),  # a multi-engine run's engines: its parent is indexed
    )
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


# --- GET /api/v1/search ----------------------------------------------------------------

MAX_QUERY_CHARS = 1000
# No page reaches past this many fused candidates (per retriever): deep pages of a ranked
# search are not useful, and each leg's LIMIT stays bounded.
MAX_CANDIDATES = 1000
# Sentences embedded for the semantic highlights of one page, at most (one small batch: the
# first hits found by meaning alone get their best sentence, later ones none).
MAX_HIGHLIGHT_SENTENCES = 24

# (model name, vector): vectors are compared only with rows of the same model.
QueryEmbedder = Callable[[str], Awaitable[tuple[str, Sequence[float]]]]
SentenceEmbedder = Callable[[list[str]], Awaitable[Sequence[Sequence[float]]]]

# ISO 639-1 language -> PostgreSQL text search configuration: the indexer's own map
# (`search.language`); any other language is indexed with `simple`.
LANGUAGE_CONFIGS: dict[str, str] = TS_CONFIGS


@dataclass(frozen=True)
class QueryModel:
    """The embedding model as the API process uses it (search.embedding)."""

    embed_query: QueryEmbedder
    embed_sentences: SentenceEmbedder | None = None


@dataclass(frozen=True)
class SearchRequest:
    q: str
    mode: SearchMode
    filters: Filters
    limit: int
    cursor: str | None
    group_by_transcription: bool


def check_query(q: str) -> str:
    stripped = q.strip()
    if not stripped:
        raise ValidationFailed("The search query is empty", code="query_empty")
    if len(q) > MAX_QUERY_CHARS:
        raise ValidationFailed(
            f"The search query is longer than {MAX_QUERY_CHARS} characters",
            code="query_too_long",
            details={"max_chars": MAX_QUERY_CHARS, "chars": len(q)},
        )
    return stripped


def _fingerprint(req: SearchRequest, q: str) -> str:
    """What a cursor belongs to: the same query, mode, filters and grouping."""
    payload = json.dumps(
        [q, req.mode.value, req.group_by_transcription, asdict(req.filters)],
        default=str,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def encode_cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "h": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> int:
    bad = ValidationFailed("The cursor is not valid for this search", code="invalid_cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise bad from exc
    if not isinstance(data, dict) or data.get("h") != fingerprint:
        raise bad
    offset = data.get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 < offset < MAX_CANDIDATES:
        raise bad
    return offset


# Filter ids that must name one of the caller's own rows: (field, table, what, code).
_OWNED_FILTERS = (
    ("audio_file_id", AudioFile, "Audio file", "audio_not_found"),
    ("collection_id", Collection, "Collection", "collection_not_found"),
    ("topic_id", Topic, "Topic", "topic_not_found"),
)


async def check_filter_ids(session: AsyncSession, user: User, filters: Filters) -> None:
    """404 for a filter id that does not exist or belongs to someone else."""
    for field, model, what, code in _OWNED_FILTERS:
        value = getattr(filters, field)
        if value is None:
            continue
        found = await session.scalar(
            select(literal(1)).where(model.id == value, visible(model, user))
        )
        if found is None:
            raise NotFound(f"{what} not found", code=code)


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


async def _set_index_options(session: AsyncSession, settings: Settings, candidates: int) -> None:
    """pgvector's scan settings for this transaction only (SET LOCAL)."""
    await session.execute(
        text(
            "SELECT set_config('hnsw.ef_search', :ef, true),"
            " set_config('hnsw.iterative_scan', :iterative, true),"
            " set_config('hnsw.max_scan_tuples', :max_tuples, true),"
            # No parallel workers: the gated-off branch (exact or HNSW) is gated inside each
            # worker, so a parallel plan started two workers for nothing (10-37 ms a search at
            # 100k); the branch that runs reads at most a few thousand rows.
            " set_config('max_parallel_workers_per_gather', '0', true),"
            # psycopg prepares a statement run five times on a connection; a generic plan
            # (user and vector unknown) could not pick the HNSW or exact branch well.
            " set_config('plan_cache_mode', 'force_custom_plan', true)"
        ),
        {
            "ef": str(max(settings.search_ef_search, min(candidates, 1000))),
            "iterative": settings.search_iterative_scan,
            "max_tuples": str(settings.search_max_scan_tuples),
        },
    )


async def search(
    session: AsyncSession,
    settings: Settings,
    user: User,
    req: SearchRequest,
    *,
    model: QueryModel,
    media_url: Callable[[uuid.UUID, float], str],
    page_url: PageUrl | None = None,
) -> dict[str, Any]:
    q = check_query(req.q)
    fingerprint = _fingerprint(req, q)
    offset = decode_cursor(req.cursor, fingerprint) if req.cursor else 0
    if (
        req.filters.date_from
        and req.filters.date_to
        and req.filters.date_from > req.filters.date_to
    ):
        raise ValidationFailed("`from` is after `to`", code="invalid_date_range")
    await check_filter_ids(session, user, req.filters)

    # Each leg returns at least the default depth, and enough to fill this page.
    candidates = min(MAX_CANDIDATES, max(settings.search_candidates, offset + req.limit + 1))
    query_vector: Sequence[float] | None = None
    model_name: str | None = None
    if req.mode is not SearchMode.text:
        model_name, query_vector = await model.embed_query(q)
    await _set_index_options(session, settings, candidates)
    stmt = _statement(
        settings,
        user,
        req,
        q,
        vector_literal(query_vector) if query_vector is not None else None,
        model_name,
        candidates,
        offset,
    )
    rows = (await session.execute(text(stmt.sql), stmt.params)).mappings().all()
    more = len(rows) > req.limit
    rows = rows[: req.limit]

    links = _Links(media_url, page_url)
    hits = [_hit(row, links) for row in rows]
    if query_vector is not None and model.embed_sentences is not None:
        await _sentence_highlights(hits, query_vector, model.embed_sentences)
    await _link_times(session, hits, links)
    for hit in hits:
        hit["snippet"] = highlight.snippet(hit["text"], hit.pop("_spans"))
    next_offset = offset + req.limit
    next_cursor = (
        encode_cursor(next_offset, fingerprint) if more and next_offset < MAX_CANDIDATES else None
    )
    return {
        "items": hits,
        "mode": req.mode,
        "group_by": "transcription" if req.group_by_transcription else "chunk",
        "limit": req.limit,
        "next_cursor": next_cursor,
    }


# (audio file, transcription, second) -> the web page playing the recording from there.
PageUrl = Callable[[uuid.UUID, uuid.UUID, float], str]


@dataclass(frozen=True)
class _Links:
    media_url: Callable[[uuid.UUID, float], str]
    page_url: PageUrl | None

    def at(self, hit: dict[str, Any], start: float) -> dict[str, Any]:
        audio_id, transcription_id = hit["audio_file_id"], hit["transcription_id"]
        return {
            "media_url": self.media_url(audio_id, start),
            "start_time": start,
            "page_url": self.page_url(audio_id, transcription_id, start) if self.page_url else None,
        }


def _statement(
    settings: Settings,
    user: User,
    req: SearchRequest,
    q: str,
    query_vector: str | None,
    model_name: str | None,
    candidates: int,
    offset: int,
) -> SearchSql:
    return build(
        mode=req.mode.value,
        user_id=user.id,
        tenant_id=access_of(user).tenant_id,
        personal=access_of(user).personal,
        query_text=q,
        query_vector=query_vector,
        embedding_model=model_name,
        language_configs=LANGUAGE_CONFIGS,
        filters=req.filters,
        candidates=candidates,
        exact_max=settings.search_exact_max_chunks,
        text_max=settings.search_text_max_matches,
        rrf_k=settings.search_rrf_k,
        limit=req.limit,
        offset=offset,
        group_by_transcription=req.group_by_transcription,
    )


async def explain_search(
    session: AsyncSession,
    settings: Settings,
    user: User,
    q: str,
    mode: SearchMode,
    query_vector: str | None,
    model_name: str | None,
    filters: Filters | None = None,
) -> str:
    """`EXPLAIN ANALYZE` of the statement a first page of this search runs, with the same
    transaction settings (tests and benchmarks read the plan PostgreSQL really picks)."""
    req = SearchRequest(q, mode, filters or Filters(), 10, None, False)
    await _set_index_options(session, settings, settings.search_candidates)
    stmt = _statement(
        settings, user, req, q, query_vector, model_name, settings.search_candidates, 0
    )
    rows = await session.execute(text("EXPLAIN (ANALYZE, COSTS OFF) " + stmt.sql), stmt.params)
    return "\n".join(str(row[0]) for row in rows)


def _hit(row: Any, links: _Links) -> dict[str, Any]:
    spans = highlight.word_spans(row["text"], row["headline"])
    distance = row["distance"]
    hit: dict[str, Any] = {
        "chunk_id": row["chunk_id"],
        "transcription_id": row["transcription_id"],
        "audio_file_id": row["audio_file_id"],
        "title": row["title"],
        "language": row["language"],
        "text": row["text"],
        "_spans": spans,
        "highlights": [{"start": s, "end": e} for s, e in spans],
        "highlight_kind": "words" if spans else "none",
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "speaker": row["speaker"],
        "speaker_name": row["speaker_name"],
        "score": float(row["score"]),
        "retrievers": list(row["retrievers"]),
        "semantic_rank": row["semantic_rank"],
        "text_rank": row["text_rank"],
        "similarity": None if distance is None else round(1.0 - float(distance), 4),
        "hits_in_transcription": row["hits"],
    }
    hit["link"] = links.at(hit, row["start_time"])
    return hit


async def _sentence_highlights(
    hits: list[dict[str, Any]], query: Sequence[float], embed: SentenceEmbedder
) -> None:
    """For hits no word matched: the sentence of the chunk closest in meaning to the query.

    The page's sentences go to the model in one batch (bounded); a chunk of one sentence needs
    no model: its highlight is the whole sentence.
    """
    wanted: list[tuple[dict[str, Any], list[tuple[int, int]]]] = []
    budget = MAX_HIGHLIGHT_SENTENCES
    for hit in hits:
        if hit["_spans"] or "semantic" not in hit["retrievers"]:
            continue
        spans = highlight.sentence_spans(hit["text"])
        if len(spans) == 1:
            _set_sentence(hit, spans[0])
        elif 1 < len(spans) <= budget:
            wanted.append((hit, spans))
            budget -= len(spans)
    if not wanted:
        return
    sentences = [hit["text"][s:e] for hit, spans in wanted for s, e in spans]
    vectors = list(await embed(sentences))
    pos = 0
    for hit, spans in wanted:
        best = highlight.best_sentence(spans, vectors[pos : pos + len(spans)], query)
        pos += len(spans)
        if best is not None:
            _set_sentence(hit, best)


async def _link_times(session: AsyncSession, hits: list[dict[str, Any]], links: _Links) -> None:
    """Deep links start at the first highlighted word, timed by the transcript's words.

    One query for the page: the segments (with word times) overlapping each highlighted hit.
    """
    wanted = [hit for hit in hits if hit["_spans"] and hit["_spans"][0][0] > 0]
    if not wanted:
        return
    rows = await session.execute(
        text(
            "SELECT h.n, s.words FROM unnest(CAST(:tids AS uuid[]), CAST(:starts AS float8[]),"
            " CAST(:ends AS float8[])) WITH ORDINALITY AS h(tid, hs, he, n)"
            ' JOIN segment s ON s.transcription_id = h.tid AND s."end" > h.hs'
            " AND s.start < h.he ORDER BY h.n, s.index"
        ),
        {
            "tids": [hit["transcription_id"] for hit in wanted],
            "starts": [hit["start_time"] for hit in wanted],
            "ends": [hit["end_time"] for hit in wanted],
        },
    )
    words: dict[int, list[tuple[float, str]]] = {}
    for n, segment_words in rows:
        words.setdefault(int(n) - 1, []).extend(
            (float(w["start"]), str(w["word"])) for w in segment_words or ()
        )
    for i, hit in enumerate(wanted):
        at = highlight.time_at(
            hit["text"], hit["_spans"][0][0], hit["start_time"], hit["end_time"], words.get(i, [])
        )
        hit["link"] = links.at(hit, round(at, 2))


def _set_sentence(hit: dict[str, Any], span: tuple[int, int]) -> None:
    hit["_spans"] = [span]
    hit["highlights"] = [{"start": span[0], "end": span[1]}]
    hit["highlight_kind"] = "sentence"
