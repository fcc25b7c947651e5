"""Topic scoring: the `topics.score` similarity query over a user's whole library.

A topic created (or edited) is scored against every completed transcription of its owner. The
job runs `library.topics.scoring.best_passages`: per transcription, the best 3 chunks by exact
cosine similarity (each chunk's similarity once, then `row_number()` per transcription; 500
transcriptions per statement). The reference is the least
work that reads every distance once: one `GROUP BY` over the same user's chunks, `max(similarity)`
per transcription. Both run on the same database in the same run.

Corpus: a few hundred sentences made from meeting-like templates, embedded with the real search
model, then Gaussian perturbations of them (renormalised) up to --transcriptions x --chunks rows.
The HNSW index is dropped first: scoring never uses it, and building it would only slow the
set-up. Another user's chunks (as many again) share the table, as in a real deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

SUBJECTS = [
    "the delivery to March",
    "the budget for next quarter",
    "hiring two engineers",
    "the new office lease",
    "the customer complaint about invoices",
    "the product launch in spring",
    "the quarterly board meeting",
    "moving servers to the cloud",
    "the marketing campaign",
    "training for the support team",
    "the supplier contract",
    "the holiday schedule",
]
VERBS = [
    "We talked about",
    "Then we agreed on",
    "She raised a concern about",
    "Nobody was happy with",
    "He asked for an update on",
    "Let us come back later to",
    "The team voted on",
    "Finance has questions about",
]
TAILS = [
    "and decided to wait a week.",
    "because the numbers were late.",
    "and everyone agreed.",
    "which needs a decision by Friday.",
    "so we will send a summary.",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transcriptions", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=20, help="chunks per transcription")


def _sentences(n: int) -> list[str]:
    combos = list(itertools.product(VERBS, SUBJECTS, TAILS))
    random.Random(7).shuffle(combos)
    return [f"{v} {s} {t}" for v, s, t in combos[:n]]


def _literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in v) + "]"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from verbatim import embedded_db, migrate
    from verbatim.config import Settings
    from verbatim.search.embedding import embed_passages

    root = Path(tempfile.mkdtemp(prefix="verbatim-bench-topics-", dir=args.tmp_dir))
    server = embedded_db.start(root / "pg")
    try:
        with psycopg.connect(server.uri, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        uri = server.uri.replace("/postgres?", "/bench?")
        migrate.upgrade(embedded_db.to_sqlalchemy_url(uri))
        settings = Settings(env="test", data_dir=root / "data", database_url=uri)

        started = time.perf_counter()
        texts = _sentences(400)
        model, base = embed_passages(texts, settings)
        embed_s = time.perf_counter() - started
        base_arr = np.array(base, dtype=np.float32)
        topic_model, (topic_vector,) = embed_passages(
            ["Delivery schedule. Shipping dates, delays, moving a delivery to another month"],
            settings,
        )
        assert topic_model == model

        n_t, n_c = args.transcriptions, args.chunks
        rng = np.random.default_rng(11)
        users = [uuid.uuid4(), uuid.uuid4()]  # the scored user, and a neighbour
        tenant = uuid.uuid4()
        load_started = time.perf_counter()
        ids: dict[uuid.UUID, list[uuid.UUID]] = {u: [] for u in users}
        with psycopg.connect(uri) as conn:
            conn.execute("DROP INDEX IF EXISTS ix_transcription_chunk_embedding")
            conn.execute(
                "INSERT INTO tenant (id, name, created_at) VALUES (%s, 'bench', now())", [tenant]
            )
            for u in users:
                conn.execute(
                    'INSERT INTO "user" (id, tenant_id, email, password_hash, role, is_active,'
                    " token_version, created_at) VALUES (%s, %s, %s, 'x', 'user', true, 0, now())",
                    [u, tenant, f"{u.hex[:8]}@bench"],
                )
            for u in users:
                for _ in range(n_t):
                    audio, tid = uuid.uuid4(), uuid.uuid4()
                    conn.execute(
                        "INSERT INTO audio_file (id, user_id, tenant_id, storage_key,"
                        " original_filename, size_bytes, sha256, mime_type, container, codec,"
                        " duration, has_video, source_type, created_at) VALUES (%s, %s, %s, %s,"
                        " 'a.wav', 1, %s, 'audio/wav', 'wav', 'pcm', 600, false, 'upload', now())",
                        [audio, u, tenant, f"uploads/{audio}", audio.hex + audio.hex],
                    )
                    conn.execute(
                        "INSERT INTO transcription (id, audio_file_id, user_id, tenant_id, status,"
                        " mode, engine, model_name, options, created_at) VALUES (%s, %s, %s, %s,"
                        " 'completed', 'mono', 'faster-whisper', 'tiny.en', '{}', now())",
                        [tid, audio, u, tenant],
                    )
                    ids[u].append(tid)
                rows = []
                for tid in ids[u]:
                    picks = rng.integers(0, len(base_arr), n_c)
                    vectors = base_arr[picks] + rng.normal(0, 0.03, (n_c, base_arr.shape[1]))
                    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                    for i, (pick, vec) in enumerate(zip(picks, vectors, strict=True)):
                        rows.append(
                            (
                                tid,
                                u,
                                tenant,
                                i,
                                texts[pick],
                                i * 30.0,
                                i * 30.0 + 30.0,
                                0,
                                10,
                                _literal(vec),
                                model,
                            )
                        )
                with (
                    conn.cursor() as cur,
                    cur.copy(
                        "COPY transcription_chunk (transcription_id, user_id, tenant_id,"
                        " chunk_index, text, start_time, end_time, start_char_pos, end_char_pos,"
                        " embedding, embedding_model) FROM STDIN"
                    ) as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
            conn.commit()
            conn.execute("ANALYZE transcription_chunk")
        load_s = time.perf_counter() - load_started

        result = asyncio.run(_measure(uri, users[0], ids[users[0]], topic_vector, model, n_c))
        figures = {
            "transcriptions": n_t,
            "chunks_per_transcription": n_c,
            "user_chunks": n_t * n_c,
            "table_chunks": 2 * n_t * n_c,
            "embed_400_sentences_s": round(embed_s, 2),
            "load_s": round(load_s, 1),
            **result,
        }
        print(
            f"topics: {n_t} transcriptions x {n_c} chunks ({n_t * n_c} of the user's, "
            f"{2 * n_t * n_c} in the table)\n"
            f"  scoring query (best 3 per transcription): p50 {result['service_p50_ms']} ms "
            f"({result['service_chunks_per_s']:,} chunks/s)\n"
            "  reference (max per transcription, one GROUP BY): "
            f"p50 {result['reference_p50_ms']} ms\n"
            f"  ratio service / reference: {result['ratio']}"
        )
        return figures
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _measure(
    uri: str,
    user: uuid.UUID,
    ids: list[uuid.UUID],
    vector: list[float],
    model: str,
    chunks: int,
) -> dict[str, Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from verbatim import embedded_db
    from verbatim.library.topics.scoring import best_passages, vector_literal

    engine = create_async_engine(embedded_db.to_sqlalchemy_url(uri))
    sessions = async_sessionmaker(engine)
    reference_sql = text(
        "SELECT transcription_id, max(1 - (embedding <=> CAST(:v AS vector)))"
        " FROM transcription_chunk WHERE user_id = :u AND embedding_model = :m"
        " GROUP BY transcription_id"
    )
    service_ms: list[float] = []
    reference_ms: list[float] = []
    found = 0
    try:
        for _ in range(5):
            async with sessions() as session:
                t0 = time.perf_counter()
                passages = await best_passages(session, user, ids, vector, model)
                service_ms.append((time.perf_counter() - t0) * 1000)
                found = len(passages)
            async with sessions() as session:
                t0 = time.perf_counter()
                rows = (
                    await session.execute(
                        reference_sql, {"v": vector_literal(vector), "u": user, "m": model}
                    )
                ).all()
                reference_ms.append((time.perf_counter() - t0) * 1000)
                assert len(rows) == len(ids)
    finally:
        await engine.dispose()
    assert found == len(ids)
    s50, r50 = statistics.median(service_ms), statistics.median(reference_ms)
    return {
        "service_p50_ms": round(s50, 1),
        "service_max_ms": round(max(service_ms), 1),
        "reference_p50_ms": round(r50, 1),
        "service_chunks_per_s": int(len(ids) * chunks / (s50 / 1000)) if s50 else 0,
        "ratio": round(s50 / r50, 2) if r50 else None,
    }
