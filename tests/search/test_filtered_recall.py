"""A user who owns 0.1% of a large index still gets their nearest chunks.

An HNSW scan walks the graph of everybody's vectors and filters afterwards: without pgvector's
iterative scan it stops after `ef_search` candidates, of which a user owning 0.1% of the rows
has almost none. The service answers a small scope exactly (no HNSW) and a large one with the
iterative scan; both are checked here against the exact answer, and so is the failure they
prevent (iterative scan off), so this test can fail.

20,000 chunks: real sentences embedded with the real model, then Gaussian perturbations of
them (as bench/search does at 100k and 1M); the small user owns 20 of them, spread through
the table.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from tests.conftest import FIXTURES, ApiUser, register
from tests.search.helpers import user_id
from verbatim.config import Settings
from verbatim.search import embedding, service
from verbatim.search.query import Filters
from verbatim.search.schemas import SearchMode
from verbatim.services import get_services

TOTAL = 20_000
SMALL = 20  # 0.1%
NOISE_SIGMA = 0.025
# Every index of transcription_chunk but the HNSW one (dropped in a rolled-back transaction).
OTHER_INDEXES = (
    "ix_transcription_chunk_user_id",
    "ix_transcription_chunk_tenant_id",
    "ix_transcription_chunk_user_tenant",
    "ix_transcription_chunk_embedding_model",
    "ix_transcription_chunk_tsv",
    "uq_transcription_chunk_transcription_index",
)
QUERIES = [
    "how do I cook a vegetable soup",
    "rain and wind forecast for the week",
    "a football game won in the last minutes",
    "practising a musical instrument every day",
    "stars and planets in the night sky",
    "the ancient library in Egypt",
    "growing beans in the garden",
    "a sleeper train to the mountains",
    "computer chips and battery life",
    "farmers need water for their crops",
]


def _sentences() -> list[str]:
    """Real sentences: the transcript of bench/data/speech_10min.ogg (tiny.en)."""
    data = json.loads((FIXTURES / "speech_10min.transcript.json").read_text())
    seen: dict[str, None] = {}
    for segment in data["segments"]:
        if len(segment["text"].split()) >= 5:
            seen.setdefault(segment["text"], None)
    return list(seen)


async def _build_index(database_url: str, big: uuid.UUID, small: uuid.UUID) -> set[int]:
    """COPY TOTAL chunks (small owns SMALL of them) and build the HNSW index; small's ids."""
    import psycopg
    from pgvector.psycopg import register_vector_async

    sentences = _sentences()
    assert len(sentences) >= 50
    model, embedded = await asyncio.to_thread(embedding.embed_passages, sentences)
    base = np.asarray(embedded, np.float32)
    rng = np.random.default_rng(5)
    pick = rng.integers(len(base), size=TOTAL)
    vectors = base[pick] + rng.normal(scale=NOISE_SIGMA, size=(TOTAL, base.shape[1]))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    small_rows = set(rng.choice(TOTAL, size=SMALL, replace=False).tolist())

    async with await psycopg.AsyncConnection.connect(database_url) as raw:
        await register_vector_async(raw)
        # Each owner's rows in their own personal tenant (decision 0019: a personal tenant
        # holds only its owner's rows, and search checks both).
        tenants = dict(
            await (
                await raw.execute(
                    'SELECT id, tenant_id FROM "user" WHERE id = ANY(%s)', ([big, small],)
                )
            ).fetchall()
        )
        # Built once the rows are in, as a bulk build (inserting into a live HNSW is slower).
        await raw.execute("DROP INDEX ix_transcription_chunk_embedding")
        owners = {big: uuid.uuid4(), small: uuid.uuid4()}
        for owner, tid in owners.items():
            aid = uuid.uuid4()
            await raw.execute(
                "INSERT INTO audio_file (id, user_id, tenant_id, storage_key,"
                " original_filename, size_bytes, sha256, mime_type, container, codec,"
                " duration, has_video, source_type, created_at) VALUES (%s, %s, %s, 'k',"
                " 'f.ogg', 1, %s, 'audio/ogg', 'ogg', 'opus', 600, false, 'upload', now())",
                (aid, owner, tenants[owner], aid.hex),
            )
            await raw.execute(
                "INSERT INTO transcription (id, audio_file_id, user_id, tenant_id, status,"
                " mode, engine, model_name, options, language, duration, created_at) VALUES"
                " (%s, %s, %s, %s, 'completed', 'mono', 'faster-whisper', 'tiny.en', '{}',"
                " 'en', 600, now())",
                (tid, aid, owner, tenants[owner]),
            )
        async with raw.cursor().copy(
            "COPY transcription_chunk (transcription_id, chunk_index, text, start_time,"
            " end_time, start_char_pos, end_char_pos, embedding, embedding_model,"
            " ts_config, user_id, tenant_id) FROM STDIN"
        ) as copy:
            for i in range(TOTAL):
                owner = small if i in small_rows else big
                await copy.write_row(
                    (owners[owner], i, sentences[pick[i]], i * 5.0, i * 5.0 + 5, 0, 1,
                     vectors[i], model, "english", owner, tenants[owner])
                )  # fmt: skip
        await raw.execute(
            "CREATE INDEX ix_transcription_chunk_embedding ON transcription_chunk"
            " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        await raw.commit()
        await raw.set_autocommit(True)
        await raw.execute("VACUUM ANALYZE transcription_chunk")
        rows = await (
            await raw.execute("SELECT id FROM transcription_chunk WHERE user_id = %s", (small,))
        ).fetchall()
    return {r[0] for r in rows}


async def _exact(small: uuid.UUID, vector: list[float]) -> list[int]:
    async with get_services().sessionmaker() as session:
        rows = await session.execute(
            text(
                "SELECT id FROM transcription_chunk WHERE user_id = :u"
                " ORDER BY (embedding <=> CAST(:v AS vector)) + 0, id LIMIT 10"
            ),
            {"u": small, "v": service.vector_literal(vector)},
        )
        return [r[0] for r in rows]


async def _service_ids(settings: Settings, user: Any, q: str, *, force_hnsw: bool) -> list[int]:
    model = service.QueryModel(embed_query=embedding.embed_query)
    req = service.SearchRequest(
        q=q,
        mode=SearchMode.semantic,
        filters=Filters(),
        limit=10,
        cursor=None,
        group_by_transcription=False,
    )
    async with get_services().sessionmaker() as session:
        if force_hnsw:
            # With statistics, PostgreSQL itself answers 20 rows of one user from the user_id
            # index (exactly), as it would for any user this small. Take that path away, in
            # this transaction only (rolled back below), so the HNSW scan is what is measured:
            # the path a large scope with a selective filter takes.
            for index in OTHER_INDEXES:
                await session.execute(text(f"DROP INDEX {index}"))
            await session.execute(text("SET LOCAL enable_seqscan = off"))
        owner = await session.get(user.__class__, user.id)
        page = await service.search(
            session, settings, owner, req, model=model, media_url=lambda a, t: ""
        )
        await session.rollback()
    return [hit["chunk_id"] for hit in page["items"]]


@pytest.mark.slow
async def test_user_owning_a_tenth_of_a_percent_gets_their_hits(
    app_client: Any, settings: Settings
) -> None:
    from verbatim.models import User

    big_user: ApiUser = await register(app_client, "big@example.com")
    small_user: ApiUser = await register(app_client, "small@example.com")
    big, small = await user_id(big_user), await user_id(small_user)
    small_ids = await _build_index(settings.database_url or "", big, small)
    assert len(small_ids) == SMALL

    async with get_services().sessionmaker() as session:
        small_row = await session.get(User, small)
    assert small_row is not None

    variants = {
        # The service as configured: 20 chunks in scope is under the exact-scan threshold.
        "default": settings,
        # HNSW forced (threshold 0) with the iterative scan: the path of a large scope.
        "hnsw_iterative": settings.model_copy(update={"search_exact_max_chunks": 0}),
        # What the iterative scan prevents: HNSW stops after ef_search candidates.
        "hnsw_plain": settings.model_copy(
            update={"search_exact_max_chunks": 0, "search_iterative_scan": "off"}
        ),
    }
    found = dict.fromkeys(variants, 0)
    wanted = 0
    for q in QUERIES:
        _, vector = await embedding.embed_query(q)
        truth = await _exact(small, list(vector))
        assert len(truth) == 10
        wanted += len(truth)
        for name, variant in variants.items():
            got = await _service_ids(variant, small_row, q, force_hnsw=name != "default")
            assert set(got) <= small_ids, f"{name}: another user's chunk in the hits"
            found[name] += len(set(got) & set(truth))
    recall = {name: found[name] / wanted for name in variants}
    assert recall["default"] == 1.0, recall
    assert recall["hnsw_iterative"] >= 0.9, recall
    assert recall["hnsw_plain"] < 0.5, recall

    # Through HTTP, as the small user and as the big one.
    r = await small_user.get("/api/v1/search", params={"q": QUERIES[0], "mode": "semantic"})
    assert r.status_code == 200, r.text
    assert [h["chunk_id"] for h in r.json()["items"]] == await _exact(
        small, list((await embedding.embed_query(QUERIES[0]))[1])
    )
    r = await big_user.get("/api/v1/search", params={"q": QUERIES[0], "limit": 50})
    assert r.status_code == 200, r.text
    assert not {h["chunk_id"] for h in r.json()["items"]} & small_ids

    # The plan the big user's search runs (HNSW branch): the exact branch, gated off, must not
    # start parallel workers. PostgreSQL evaluates the gate inside each worker, so a parallel
    # plan paid 10-37 ms of worker start-up for nothing on every search (bench/search, 100k).
    big_row = None
    async with get_services().sessionmaker() as session:
        big_row = await session.get(User, big)
        assert big_row is not None
        _, vector = await embedding.embed_query(QUERIES[1])
        # Make a parallel plan attractive, as a large table makes it by itself.
        await session.execute(text("SET LOCAL parallel_setup_cost = 0"))
        await session.execute(text("SET LOCAL parallel_tuple_cost = 0"))
        await session.execute(text("SET LOCAL min_parallel_table_scan_size = 0"))
        plan = await service.explain_search(
            session,
            settings,
            big_row,
            QUERIES[1],
            SearchMode.hybrid,
            service.vector_literal(vector),
            embedding.loaded_model(),
        )
        await session.rollback()
    assert "Index Scan using ix_transcription_chunk_embedding" in plan
    assert "Workers Launched" not in plan and "Parallel" not in plan, plan
