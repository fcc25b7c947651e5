"""The one search query: vector and full-text candidates fused by reciprocal rank fusion.

Built from fixed fragments (nothing the caller sends is ever spliced into the SQL text: every
value is a bind parameter). The shape, for `mode=hybrid`:

    scope      the caller's completed transcriptions that pass the filters (ownership lives
               here, once: `tenancy.scope.owner_sql`, the tenant and in a personal
               tenant the user too)
    sizing     are there at most :exact_max chunks in scope? (counts no further than that)
    vec_exact  small scope: exact cosine distance over the scope's chunks (an index on
               transcription_id, no HNSW); its ORDER BY cannot use the HNSW index on purpose
    vec_ann    large scope: HNSW index scan with the filters in the same node, continued by
               pgvector's iterative scan (relaxed order) until :k rows pass them
    txt        per text search configuration in use: `tsv @@ websearch_to_tsquery(cfg, q)` on
               the rows indexed with that configuration (GIN), ranked by ts_rank_cd
    fused      sum over retrievers of 1 / (rrf_k + rank); which retrievers found each chunk
    page       ordered by score, windowed by the cursor; ts_headline only for the page rows

Exactly one of vec_exact and vec_ann runs: each is gated by an uncorrelated sub-select on
`sizing`, which PostgreSQL evaluates once as a one-time filter before starting the branch.
"""

# The SQL text is assembled from the fixed fragments below only; every value is a bind
# parameter, so S608 (string-built SQL) does not apply to this module.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from verbatim.tenancy.scope import owner_sql

# Headline markers: control characters that cannot occur in stored transcript text we index
# (ts_headline is told to use them, and they are turned into offsets afterwards).
MARK_START = "\x02"
MARK_STOP = "\x03"
HEADLINE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_STOP}, HighlightAll=true, MaxFragments=0"


@dataclass(frozen=True)
class Filters:
    audio_file_id: UUID | None = None
    collection_id: UUID | None = None
    topic_id: UUID | None = None
    language: str | None = None
    speaker: str | None = None
    source_type: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    min_duration: float | None = None


@dataclass(frozen=True)
class SearchSql:
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def _narrowed(filters: Filters) -> bool:
    """Does a filter on the transcription, its recording or its library place apply?"""
    return any(value is not None for name, value in vars(filters).items() if name != "speaker")


def _scope(filters: Filters, params: dict[str, Any], owned: str) -> str:
    """The caller's searchable transcriptions."""
    where = [owned, "t.status = 'completed'"]
    if filters.audio_file_id is not None:
        where.append("t.audio_file_id = :audio_file_id")
        params["audio_file_id"] = filters.audio_file_id
    if filters.language is not None:
        where.append("t.language = :language")
        params["language"] = filters.language
    if filters.source_type is not None:
        where.append("a.source_type = :source_type")
        params["source_type"] = filters.source_type
    if filters.date_from is not None:
        where.append("a.created_at >= :date_from")
        params["date_from"] = filters.date_from
    if filters.date_to is not None:
        # `to` is a whole day, inclusive.
        where.append("a.created_at < CAST(:date_to AS date) + 1")
        params["date_to"] = filters.date_to
    if filters.min_duration is not None:
        where.append("coalesce(t.duration, a.duration) >= :min_duration")
        params["min_duration"] = filters.min_duration
    if filters.collection_id is not None:
        where.append(
            "EXISTS (SELECT 1 FROM transcription_collection tc"
            " WHERE tc.transcription_id = t.id AND tc.collection_id = :collection_id)"
        )
        params["collection_id"] = filters.collection_id
    if filters.topic_id is not None:
        # A suggestion the user rejected does not put a transcription in the topic.
        where.append(
            "EXISTS (SELECT 1 FROM transcription_topic tt"
            " WHERE tt.transcription_id = t.id AND tt.topic_id = :topic_id"
            " AND tt.status <> 'rejected')"
        )
        params["topic_id"] = filters.topic_id
    return (
        "scope AS MATERIALIZED (\n"
        "  SELECT t.id FROM transcription t JOIN audio_file a ON a.id = t.audio_file_id\n"
        "  WHERE " + "\n    AND ".join(where) + "\n)"
    )


def build(
    *,
    mode: str,
    user_id: UUID,
    tenant_id: UUID | None = None,
    personal: bool = True,
    query_text: str,
    query_vector: str | None,
    embedding_model: str | None,
    filters: Filters,
    language_configs: Mapping[str, str],
    candidates: int,
    exact_max: int,
    text_max: int,
    rrf_k: int,
    limit: int,
    offset: int,
    group_by_transcription: bool,
) -> SearchSql:
    """The statement and its parameters. `query_vector` is pgvector's text form."""
    params: dict[str, Any] = {
        "user_id": user_id,
        "tenant_id": tenant_id,
        "q": query_text,
        "k": candidates,
        "rrf_k": rrf_k,
        "limit": limit + 1,  # one more than the page: is there a next page?
        "offset": offset,
    }
    # Ownership: the chunk's own user_id (the HNSW and GIN scans check it row by row), and,
    # when a filter narrows the library, the scope of transcriptions too.
    where = [owner_sql("c", tenant_id, personal)]
    owned_t = owner_sql("t", tenant_id, personal)
    narrowed = _narrowed(filters)
    ctes: list[str] = []
    if narrowed:
        ctes.append(_scope(filters, params, owned_t))
    if filters.speaker is not None:
        # The label (SPEAKER_1) or the name it was given (speaker.display_name), any case.
        where.append(
            "(lower(c.speaker) = lower(:speaker) OR EXISTS (SELECT 1 FROM speaker sp"
            " WHERE sp.transcription_id = c.transcription_id AND sp.label = c.speaker"
            " AND lower(sp.display_name) = lower(:speaker)))"
        )
        params["speaker"] = filters.speaker
    # IS TRUE keeps the IN a hashed sub-plan checked inside the scan node (not a join above
    # it), so an iterative index scan itself skips rows out of scope and keeps going.
    in_scope = where + (
        ["(c.transcription_id IN (SELECT id FROM scope)) IS TRUE"] if narrowed else []
    )
    conditions = "\n    AND ".join(in_scope)
    # Vectors of another model (before a re-index finished) are never compared with the query.
    # (The sizing count leaves this out: it only chooses a plan, and stays index-only.)
    vec_conditions = "\n    AND ".join([*in_scope, "c.embedding_model = :embedding_model"])
    legs: list[str] = []
    recursive = False

    if mode in ("hybrid", "semantic"):
        assert query_vector is not None
        params["qvec"] = query_vector
        params["embedding_model"] = embedding_model
        params["exact_max"] = exact_max
        # How many chunks are in scope, counted no further than one past the threshold, through
        # indexes only: (user_id), or (transcription_id, chunk_index) per scoped transcription.
        if narrowed:
            counted = (
                "SELECT 1 FROM scope s CROSS JOIN LATERAL (\n"
                "      SELECT 1 FROM transcription_chunk c\n"
                "      WHERE c.transcription_id = s.id AND " + " AND ".join(where) + "\n"
                "      LIMIT :exact_max + 1) per"
            )
        else:
            counted = "SELECT 1 FROM transcription_chunk c WHERE " + " AND ".join(where)
        ctes.append(
            "sizing AS MATERIALIZED (\n"
            "  SELECT count(*) <= :exact_max AS small FROM (\n"
            f"    {counted}\n"
            "    LIMIT :exact_max + 1) n\n)"
        )
        ctes.append(
            "vec_exact AS MATERIALIZED (\n"
            "  SELECT c.id, c.embedding <=> CAST(:qvec AS vector) AS distance\n"
            "  FROM transcription_chunk c\n"
            f"  WHERE {vec_conditions}\n"
            "    AND (SELECT small FROM sizing)\n"
            # `+ 0` keeps the planner off the HNSW index: this branch is the exact answer.
            "  ORDER BY (c.embedding <=> CAST(:qvec AS vector)) + 0, c.id\n"
            "  LIMIT :k\n)"
        )
        ctes.append(
            "vec_ann AS MATERIALIZED (\n"
            "  SELECT c.id, c.embedding <=> CAST(:qvec AS vector) AS distance\n"
            "  FROM transcription_chunk c\n"
            f"  WHERE {vec_conditions}\n"
            "    AND NOT (SELECT small FROM sizing)\n"
            "  ORDER BY c.embedding <=> CAST(:qvec AS vector)\n"
            "  LIMIT :k\n)"
        )
        # Relaxed order: the iterative scan may return rows slightly out of order; rank them.
        legs.append(
            "SELECT id, 'semantic' AS retriever,"
            " row_number() OVER (ORDER BY distance, id) AS rank, distance, NULL::real AS ts_rank\n"
            "  FROM (SELECT * FROM vec_exact UNION ALL SELECT * FROM vec_ann) v"
        )

    if mode in ("hybrid", "text"):
        # The configurations the caller's transcriptions are indexed with (their languages,
        # through the same map the indexer uses; `simple` for any other language).
        params["lang_keys"] = list(language_configs)
        params["lang_cfgs"] = list(language_configs.values())
        if narrowed:
            languages = (
                "SELECT DISTINCT t.language FROM transcription t"
                " WHERE t.id IN (SELECT id FROM scope)"
            )
        else:
            # The caller's distinct languages by a loose index scan: one probe of the
            # (owner, language) index per language, not a pass over every transcription
            # (6 ms at 20,000 transcriptions, on every search).
            recursive = True
            ctes.append(
                "langs AS (\n"
                f"  (SELECT t.language FROM transcription t WHERE {owned_t}"
                " AND t.language IS NOT NULL ORDER BY t.language LIMIT 1)\n"
                "  UNION ALL\n"
                f"  SELECT (SELECT t.language FROM transcription t WHERE {owned_t}"
                " AND t.language > l.language ORDER BY t.language LIMIT 1)\n"
                "  FROM langs l WHERE l.language IS NOT NULL\n)"
            )
            languages = (
                "SELECT language FROM langs WHERE language IS NOT NULL UNION ALL"
                f" SELECT NULL WHERE EXISTS (SELECT 1 FROM transcription t WHERE {owned_t}"
                " AND t.language IS NULL)"
            )
        ctes.append(
            "tsq AS MATERIALIZED (\n"
            "  SELECT cfg, websearch_to_tsquery(cfg, :q) AS query FROM (\n"
            "    SELECT DISTINCT coalesce(m.cfg, 'simple')::regconfig AS cfg\n"
            f"    FROM ({languages}) l\n"
            "    LEFT JOIN unnest(CAST(:lang_keys AS text[]), CAST(:lang_cfgs AS text[]))"
            # "en-US" and "en_us" are "en", as the indexer reads them (search.language).
            " AS m(lang, cfg)"
            " ON m.lang = split_part(lower(replace(l.language, '_', '-')), '-', 1)) used\n)"
        )
        # Per configuration: the query in that configuration against the rows indexed with it,
        # one GIN scan each (LATERAL: as a join under the LIMIT, the planner, which cannot
        # count tsq's rows, chose a sequential scan of every chunk). At most :text_max matches
        # (the first the scan yields) are ranked: ranking reads each match's tsvector, and a
        # common-word query matched 77,000 of a million chunks (440 ms, decision 0030).
        matches = (
            "SELECT c.id, c.tsv FROM transcription_chunk c\n"
            "    WHERE c.ts_config = tsq.cfg AND c.tsv @@ tsq.query\n"
            f"    AND {conditions}"
        )
        if text_max > 0:
            matches += "\n    LIMIT :text_max"
            params["text_max"] = text_max
        ctes.append(
            "txt AS MATERIALIZED (\n"
            "  SELECT m.id, ts_rank_cd(m.tsv, tsq.query) AS ts_rank\n"
            f"  FROM tsq CROSS JOIN LATERAL (\n    {matches}\n  ) m\n"
            "  ORDER BY ts_rank DESC, m.id\n"
            "  LIMIT :k\n)"
        )
        legs.append(
            "SELECT id, 'text' AS retriever,"
            " row_number() OVER (ORDER BY ts_rank DESC, id) AS rank,"
            " NULL::float8 AS distance, ts_rank\n"
            "  FROM txt"
        )

    ctes.append("ranked AS (\n  " + "\n  UNION ALL\n  ".join(legs) + "\n)")
    ctes.append(
        "fused AS (\n"
        "  SELECT r.id, sum(1.0 / (:rrf_k + r.rank)) AS score,\n"
        "    array_agg(r.retriever ORDER BY r.retriever) AS retrievers,\n"
        "    min(r.rank) FILTER (WHERE r.retriever = 'semantic') AS semantic_rank,\n"
        "    min(r.rank) FILTER (WHERE r.retriever = 'text') AS text_rank,\n"
        "    min(r.distance) AS distance\n"
        "  FROM ranked r GROUP BY r.id\n)"
    )
    if group_by_transcription:
        ctes.append(
            "grouped AS (\n"
            "  SELECT f.*, c.transcription_id,\n"
            "    row_number() OVER (PARTITION BY c.transcription_id"
            " ORDER BY f.score DESC, f.id) AS nth,\n"
            "    count(*) OVER (PARTITION BY c.transcription_id) AS hits\n"
            "  FROM fused f JOIN transcription_chunk c ON c.id = f.id\n)"
        )
        source = "SELECT * FROM grouped WHERE nth = 1"
    else:
        source = "SELECT f.*, NULL::bigint AS hits FROM fused f"
    ctes.append(
        "page AS MATERIALIZED (\n"
        f"  {source}\n"
        "  ORDER BY score DESC, id\n"
        "  LIMIT :limit OFFSET :offset\n)"
    )
    headline = "NULL::text"
    if mode in ("hybrid", "text"):
        params["headline_options"] = HEADLINE_OPTIONS
        headline = (
            "CASE WHEN p.text_rank IS NOT NULL THEN ts_headline(c.ts_config, c.text,"
            " (SELECT query FROM tsq WHERE tsq.cfg = c.ts_config),"
            " :headline_options) END"
        )
    sql = (
        ("WITH RECURSIVE " if recursive else "WITH ")
        + ",\n".join(ctes)
        + "\nSELECT p.id AS chunk_id, p.score, p.retrievers, p.semantic_rank, p.text_rank,"
        " p.distance, p.hits,\n"
        "  c.transcription_id, c.text, c.start_time, c.end_time, c.speaker,\n"
        "  (SELECT sp.display_name FROM speaker sp WHERE sp.transcription_id = c.transcription_id"
        " AND sp.label = c.speaker) AS speaker_name,\n"
        "  t.audio_file_id, t.language, coalesce(a.title, a.original_filename) AS title,\n"
        f"  {headline} AS headline\n"
        "FROM page p\n"
        "JOIN transcription_chunk c ON c.id = p.id\n"
        "JOIN transcription t ON t.id = c.transcription_id\n"
        "JOIN audio_file a ON a.id = t.audio_file_id\n"
        "ORDER BY p.score DESC, p.id"
    )
    return SearchSql(sql=sql, params=params)
