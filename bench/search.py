"""Search benchmark: GET /api/v1/search at 100k and 1M chunks.

The corpus is real text embedded with the real model (the one the service uses): prose from
this repository's docs, the benchmark clip's paragraphs, Python's own help topics and the
descriptions of the installed packages, cut into chunks of 25-60 words at sentence ends
(shorter than transcript chunks, to keep embedding time reasonable on shared cores). Three
thousand chunks are embedded once and cached in bench/results/ (git-ignored). To reach 100k
or 1M rows, each further row copies a real chunk's text and takes its vector plus Gaussian
noise (sigma per dimension, renormalised: cosine ~0.9 to its source), so the vectors keep the
clustered shape of text embeddings instead of uniform noise.

One `verbatim serve` per size (fresh data directory; its embedded PostgreSQL is started first by
the benchmark with shared_buffers raised, then adopted by the server). Three users own the rows:
`big` (98.9%), `one_pct` (1%) and `tenth_pct` (0.1%), spread at random through the table, 50
chunks per transcription. Rows go in by binary COPY with the HNSW and GIN indexes dropped; then
both indexes are built (timed, sizes printed) with maintenance_work_mem raised.

Printed per size:
- index build time and size (HNSW and GIN), table size;
- recall@10 of the semantic leg (the service's own SQL, mode=semantic) against exact search
  (same filter, sequential scan), for `big` (HNSW with iterative scan), and for `one_pct` with
  the exact-scan threshold turned off (HNSW + iterative scan over a 1% filter) and on;
- p50/p95 through HTTP: hybrid as `big`; semantic as `one_pct` and `tenth_pct`.

Queries are held-out sentences (from documents kept out of the corpus), their first 4-10 words
as the text a user would type; the server embeds each query itself.
"""

from __future__ import annotations

import argparse
import ast
import glob
import hashlib
import json
import re
import statistics
import sysconfig
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from bench.common import REPO_ROOT, BenchError, expect, verbatim_server

CACHE = REPO_ROOT / "bench" / "results" / "search_corpus_real.npz"
DIM = 384
NOISE_SIGMA = 0.025  # per dimension: |noise| ~ 0.49, cosine to the source ~ 0.9
CHUNKS_PER_TRANSCRIPTION = 50
SHARES = {"one_pct": 0.01, "tenth_pct": 0.001}
RECALL_K = 10
TARGET_RECALL = 0.95
TARGET_P95_MS = 100.0
# Shorter than a transcript chunk (100-250 words): embedding cost grows with length, and on
# two shared cores several thousand long chunks took most of an hour. Retrieval is the same.
MIN_WORDS, MAX_WORDS = 25, 60
SHARED_BUFFERS = "4GB"
EF_SWEEP = (40, 100, 200, 400, 800)
# Installed packages whose docstrings are mostly prose (all dependencies of the service).
DOCSTRING_PACKAGES = ("sqlalchemy", "pydantic", "alembic", "fastapi", "starlette", "typer", "rich")
MAINTENANCE_WORK_MEM = "6GB"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("search")
    group.add_argument(
        "--search-sizes",
        default="100000",
        help="comma-separated corpus sizes (default 100000; the issue's targets are at 1000000)",
    )
    group.add_argument(
        "--search-base-chunks", type=int, default=60000, help="real chunks embedded (at most)"
    )
    group.add_argument("--search-queries", type=int, default=60, help="queries per measurement")
    group.add_argument(
        "--search-ef-search",
        default="400",
        help="hnsw.ef_search for the HTTP runs, comma-separated: the server is started once per"
        " value and hybrid is measured at each (default 400)",
    )
    group.add_argument("--search-m", type=int, default=16, help="HNSW m")
    group.add_argument(
        "--no-search-calibrate",
        dest="search_calibrate",
        action="store_false",
        help="skip indexing the real chunks against synthetic rows of the same count first",
    )
    group.add_argument(
        "--search-ef-construction", type=int, default=64, help="HNSW ef_construction"
    )


# --- corpus ---------------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def _prose(text: str) -> str:
    """Markdown/reST to plain prose: code blocks, tables, markup and URLs dropped."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if (
            not stripped
            or stripped.startswith(("|", "#", ">>>", "...", "$", "..", "::", "+", "=", "-" * 3))
            or line.startswith(("    ", "\t"))
        ):
            lines.append("")
            continue
        lines.append(stripped)
    text = "\n".join(lines)
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"[`*_\[\]]+", "", text)
    text = re.sub(r"\(\s*\)", "", text)
    return text


def _is_prose(sentence: str) -> bool:
    words = sentence.split()
    if len(words) < 4:
        return False
    alpha = sum(1 for w in words if _WORD.fullmatch(w.strip(".,;:!?()\"'")))
    return alpha / len(words) >= 0.7


def source_documents() -> list[tuple[str, str]]:
    """(name, text) of every document the corpus is cut from, in a stable order."""
    docs: list[tuple[str, str]] = []
    for path in [*sorted((REPO_ROOT / "docs").rglob("*.md")), REPO_ROOT / "README.md"]:
        docs.append((str(path.relative_to(REPO_ROOT)), path.read_text()))
    script = (REPO_ROOT / "scripts" / "make_fixtures.py").read_text()
    tree = ast.parse(script)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "BENCH_PARAGRAPHS" for t in node.targets
        ):
            paragraphs = ast.literal_eval(node.value)
            docs.append(("bench paragraphs", "\n\n".join(paragraphs)))
    import pydoc_data.topics

    for name, text in sorted(pydoc_data.topics.topics.items()):
        docs.append((f"pydoc:{name}", text))
    purelib = sysconfig.get_paths()["purelib"]
    for path in sorted(glob.glob(f"{purelib}/*.dist-info/METADATA")):
        raw = Path(path).read_text(errors="ignore")
        if "\n\n" in raw:
            docs.append((Path(path).parent.name, raw.split("\n\n", 1)[1]))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    trees = [stdlib] + [Path(purelib) / pkg for pkg in DOCSTRING_PACKAGES]
    for tree_root in trees:
        for path in sorted(tree_root.rglob("*.py")):
            rel = path.relative_to(tree_root.parent)
            if any(part in ("test", "tests", "idlelib", "site-packages") for part in rel.parts):
                continue
            try:
                module = ast.parse(path.read_text(errors="ignore"))
            except (SyntaxError, ValueError):
                continue
            parts = [
                ast.get_docstring(node) or ""
                for node in ast.walk(module)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            ]
            docs.append((f"py:{rel}", "\n\n".join(p for p in parts if p)))
    docs.extend(aws_documents())
    return docs


def aws_documents() -> list[tuple[str, str]]:
    """The API reference shipped inside botocore (a dependency, for S3): one document per AWS
    service (its newest API version), every `documentation` string of its operations and
    shapes with the HTML tags dropped. About 110,000 chunks of English prose, offline."""
    import gzip

    import botocore

    root = Path(botocore.__file__).parent / "data"
    newest: dict[str, Path] = {}
    for path in sorted(root.glob("*/*/service-2.json.gz")):
        newest[path.parts[-3]] = path  # versions are dated folders: the last sorts newest
    seen: set[str] = set()
    docs: list[tuple[str, str]] = []
    for service, path in sorted(newest.items()):
        strings: list[str] = []
        _documentation(json.loads(gzip.decompress(path.read_bytes())), strings)
        fresh = [x for x in strings if x not in seen]  # shared boilerplate: once
        seen.update(fresh)
        docs.append((f"aws:{service}", "\n\n".join(re.sub(r"<[^>]+>", " ", x) for x in fresh)))
    return docs


def _documentation(node: Any, out: list[str]) -> None:
    """Every `documentation` string under node, in document order."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "documentation" and isinstance(value, str):
                out.append(value)
            else:
                _documentation(value, out)
    elif isinstance(node, list):
        for value in node:
            _documentation(value, out)


def chunk_document(text: str) -> list[str]:
    """Consecutive prose sentences grouped into chunks of MIN_WORDS..MAX_WORDS words."""
    sentences = [
        " ".join(s.split())
        for para in re.split(r"\n\s*\n", _prose(text))
        for s in _SENTENCE.split(" ".join(para.split()))
    ]
    chunks: list[str] = []
    current: list[str] = []
    words = 0
    for sentence in sentences:
        if not _is_prose(sentence):
            continue
        n = len(sentence.split())
        if n > MAX_WORDS:
            continue
        if words + n > MAX_WORDS and words >= MIN_WORDS:
            chunks.append(" ".join(current))
            current, words = [], 0
        current.append(sentence)
        words += n
    if words >= MIN_WORDS:
        chunks.append(" ".join(current))
    return chunks


def held_out(name: str) -> bool:
    """One document in 25 gives the queries and never enters the corpus."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 25 == 0


@dataclass
class Corpus:
    texts: list[str]  # real chunks
    vectors: np.ndarray  # their vectors (float32, L2-normalised), row for row
    documents: np.ndarray  # the index of the document each chunk was cut from
    queries: list[str]  # held-out query texts
    model: str


def build_corpus(max_chunks: int) -> Corpus:
    """Real chunks embedded with the service's model (checkpointed in CACHE), and queries."""
    from verbatim.search import embedding

    docs = source_documents()
    texts: list[str] = []
    documents: list[int] = []
    query_texts: list[str] = []
    seen: set[str] = set()
    for d, (name, text) in enumerate(docs):
        chunks = chunk_document(text)
        if held_out(name):
            for chunk in chunks:
                for sentence in _SENTENCE.split(chunk):
                    words = sentence.rstrip(".!?").split()
                    if len(words) >= 6:
                        query_texts.append(" ".join(words[: 4 + len(words) % 7]))
            continue
        for chunk in chunks:
            if chunk not in seen:
                seen.add(chunk)
                texts.append(chunk)
                documents.append(d)
    rng = np.random.default_rng(7)
    if len(texts) > max_chunks:
        keep = sorted(rng.choice(len(texts), size=max_chunks, replace=False).tolist())
        texts = [texts[i] for i in keep]
        documents = [documents[i] for i in keep]
    model = embedding.model_name()
    key = hashlib.sha256(json.dumps([model, texts]).encode()).hexdigest()[:16]
    vectors = np.zeros((len(texts), DIM), dtype=np.float32)
    done = 0
    if CACHE.exists():
        cached = np.load(CACHE, allow_pickle=False)
        if str(cached["key"]) == key:
            done = int(cached["done"])
            vectors[:done] = cached["vectors"][:done]
        elif str(cached["model"]) == model and len(cached["texts"]) == len(texts):
            # The sources moved on (this repository's docs change); a complete cached corpus
            # of the same size stays the corpus: embedding it takes most of an hour.
            cached_texts = [str(t) for t in cached["texts"]]
            if int(cached["done"]) == len(cached_texts):
                print(f"using the cached corpus ({len(cached_texts)} chunks)")
                return Corpus(
                    cached_texts, cached["vectors"], cached["documents"], query_texts, model
                )
    if done < len(texts):
        print(f"embedding {len(texts) - done} of {len(texts)} chunks with {model}"
              " (checkpointed, cached afterwards) ...", flush=True)  # fmt: skip
    started = time.perf_counter()
    first = done
    batch = 64
    while done < len(texts):
        _, embedded = embedding.embed_passages(texts[done : done + batch])
        vectors[done : done + len(embedded)] = np.asarray(embedded)
        done += len(embedded)
        if done % (batch * 50) == 0 or done == len(texts):
            _save_corpus(key, model, texts, vectors, np.array(documents), done)
            rate = (done - first) / (time.perf_counter() - started)
            print(f"  {done}/{len(texts)} ({rate:.0f} chunks/s)", flush=True)
    return Corpus(texts, vectors, np.array(documents), query_texts, model)


def _save_corpus(
    key: str, model: str, texts: list[str], vectors: np.ndarray, documents: np.ndarray, done: int
) -> None:
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    partial = CACHE.with_suffix(".partial.npz")
    np.savez(
        partial,
        key=np.array(key),
        model=np.array(model),
        texts=np.array(texts),
        vectors=vectors,
        documents=documents,
        done=np.array(done),
    )
    partial.replace(CACHE)  # a kill mid-write keeps the previous checkpoint


# --- database -------------------------------------------------------------------------------


def _vector_rows(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n vectors: the real ones, then noisy copies of them (renormalised)."""
    out = np.empty((n, DIM), dtype=np.float32)
    b = len(base)
    out[: min(n, b)] = base[: min(n, b)]
    pos = b
    while pos < n:
        step = min(50_000, n - pos)
        src = base[np.arange(pos, pos + step) % b]
        noisy = src + rng.normal(scale=NOISE_SIGMA, size=src.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        out[pos : pos + step] = noisy
        pos += step
    return out


def load(
    conn: psycopg.Connection[Any],
    users: dict[str, uuid.UUID],
    tenants: dict[str, uuid.UUID],
    corpus: Corpus,
    n: int,
) -> dict[str, Any]:
    """COPY n chunks (and their transcriptions and audio files), indexes dropped first."""
    from pgvector.psycopg import register_vector

    register_vector(conn)
    rng = np.random.default_rng(11)
    owner_of = np.zeros(n, dtype=np.int8)  # 0 big, 1 one_pct, 2 tenth_pct
    order = rng.permutation(n)
    n_one = int(n * SHARES["one_pct"])
    n_tenth = int(n * SHARES["tenth_pct"])
    owner_of[order[:n_one]] = 1
    owner_of[order[n_one : n_one + n_tenth]] = 2
    names = ["big", "one_pct", "tenth_pct"]
    started = time.perf_counter()
    vectors = _vector_rows(corpus.vectors, n, rng)
    texts, model = corpus.texts, corpus.model
    with conn.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS ix_transcription_chunk_embedding")
        cur.execute("DROP INDEX IF EXISTS ix_transcription_chunk_tsv")
        # Transcriptions: 50 chunks each, per owner.
        transcription_of = np.empty(n, dtype=object)
        audio_rows = []
        transcription_rows = []
        for owner in range(3):
            idx = np.flatnonzero(owner_of == owner)
            for start in range(0, len(idx), CHUNKS_PER_TRANSCRIPTION):
                aid, tid = uuid.uuid4(), uuid.uuid4()
                audio_rows.append((aid, names[owner]))
                transcription_rows.append((tid, aid, names[owner]))
                transcription_of[idx[start : start + CHUNKS_PER_TRANSCRIPTION]] = tid
        with cur.copy(
            "COPY audio_file (id, user_id, tenant_id, storage_key, original_filename,"
            " size_bytes, sha256, mime_type, container, codec, duration, has_video,"
            " source_type, title, created_at) FROM STDIN"
        ) as copy:
            for aid, owner_name in audio_rows:
                copy.write_row(
                    (aid, users[owner_name], tenants[owner_name], f"bench/{aid}", "bench.ogg",
                     1, aid.hex, "audio/ogg", "ogg", "opus", 3000.0, False, "upload",
                     f"Recording {aid.hex[:6]}", "2026-11-30")
                )  # fmt: skip
        with cur.copy(
            "COPY transcription (id, audio_file_id, user_id, tenant_id, status, mode, engine,"
            " model_name, options, language, duration, created_at, completed_at) FROM STDIN"
        ) as copy:
            for tid, aid, owner_name in transcription_rows:
                copy.write_row(
                    (tid, aid, users[owner_name], tenants[owner_name], "completed", "mono",
                     "faster-whisper", "tiny.en", "{}", "en", 3000.0, "2026-11-30", "2026-11-30")
                )  # fmt: skip
        with cur.copy(
            "COPY transcription_chunk (transcription_id, chunk_index, text, start_time, end_time,"
            " start_char_pos, end_char_pos, embedding, embedding_model, ts_config, user_id,"
            " tenant_id) FROM STDIN"
        ) as copy:
            counters: dict[Any, int] = {}
            for i in range(n):
                tid = transcription_of[i]
                k = counters.get(tid, 0)
                counters[tid] = k + 1
                text = texts[i % len(texts)]
                copy.write_row(
                    (tid, k, text, k * 60.0, k * 60.0 + 58.0, k * 1000, k * 1000 + len(text),
                     vectors[i], model, "english", users[names[owner_of[i]]],
                     tenants[names[owner_of[i]]])
                )  # fmt: skip
    conn.commit()
    loaded_s = time.perf_counter() - started
    print(f"loaded {n} chunks in {loaded_s:.1f} s", flush=True)
    return {"load_s": round(loaded_s, 1), "transcriptions": len(transcription_rows)}


def build_indexes(conn: psycopg.Connection[Any], m: int, ef_construction: int) -> dict[str, Any]:
    out: dict[str, Any] = {"m": m, "ef_construction": ef_construction}
    conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
    conn.execute("SET max_parallel_maintenance_workers = 1")  # two cores: leader + one
    started = time.perf_counter()
    conn.execute(
        "CREATE INDEX ix_transcription_chunk_embedding ON transcription_chunk"
        f" USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = "
        f"{ef_construction})"
    )
    conn.commit()
    out["hnsw_build_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    conn.execute("CREATE INDEX ix_transcription_chunk_tsv ON transcription_chunk USING gin (tsv)")
    conn.commit()
    out["gin_build_s"] = round(time.perf_counter() - started, 1)
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE transcription_chunk")
    conn.execute("VACUUM ANALYZE transcription")
    conn.execute("VACUUM ANALYZE audio_file")
    conn.autocommit = False
    sizes = conn.execute(
        "SELECT pg_relation_size('ix_transcription_chunk_embedding'),"
        " pg_relation_size('ix_transcription_chunk_tsv'),"
        " pg_total_relation_size('transcription_chunk')"
    ).fetchone()
    assert sizes is not None
    out["hnsw_mb"] = round(sizes[0] / 2**20, 1)
    out["gin_mb"] = round(sizes[1] / 2**20, 1)
    out["table_total_mb"] = round(sizes[2] / 2**20, 1)
    print(
        f"HNSW (m={m}, ef_construction={ef_construction}) built in {out['hnsw_build_s']} s, "
        f"{out['hnsw_mb']} MB; GIN in {out['gin_build_s']} s, {out['gin_mb']} MB; "
        f"table with indexes {out['table_total_mb']} MB",
        flush=True,
    )
    return out


# --- measurements ---------------------------------------------------------------------------


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def semantic_ids(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID,
    vector: np.ndarray,
    model: str,
    *,
    exact_max: int,
    ef_search: int,
) -> list[int]:
    """The service's own semantic query (mode=semantic), top RECALL_K chunk ids."""
    from verbatim.search.query import Filters, build
    from verbatim.search.service import LANGUAGE_CONFIGS

    stmt = build(
        mode="semantic",
        user_id=user_id,
        query_text="unused",
        query_vector=_literal(vector),
        embedding_model=model,
        filters=Filters(),
        language_configs=LANGUAGE_CONFIGS,
        candidates=100,
        exact_max=exact_max,
        text_max=0,
        rrf_k=60,
        limit=RECALL_K,
        offset=0,
        group_by_transcription=False,
    )
    sql = re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", stmt.sql)
    conn.execute(
        "SELECT set_config('hnsw.ef_search', %s, true),"
        " set_config('hnsw.iterative_scan', 'relaxed_order', true)",
        (str(ef_search),),
    )
    rows = conn.execute(sql, stmt.params).fetchall()
    conn.rollback()
    return [r[0] for r in rows[:RECALL_K]]


# Exact answers per (user, query vector): the recall sweep asks for each one 8 times, and at
# 1M chunks an exact answer is a sequential scan of the table (about 1.4 s here).
_EXACT: dict[tuple[uuid.UUID, bytes], list[int]] = {}


def exact_ids(conn: psycopg.Connection[Any], user_id: uuid.UUID, vector: np.ndarray) -> list[int]:
    key = (user_id, np.asarray(vector, dtype=np.float32).tobytes())
    if key not in _EXACT:
        _EXACT[key] = _exact_ids(conn, user_id, vector)
    return _EXACT[key]


def _exact_ids(conn: psycopg.Connection[Any], user_id: uuid.UUID, vector: np.ndarray) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM transcription_chunk WHERE user_id = %s"
        " ORDER BY (embedding <=> %s::vector) + 0, id LIMIT %s",
        (user_id, _literal(vector), RECALL_K),
    ).fetchall()
    conn.rollback()
    return [r[0] for r in rows]


def recall(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID,
    vectors: list[np.ndarray],
    model: str,
    *,
    exact_max: int,
    ef_search: int,
) -> float:
    found = 0
    total = 0
    for vector in vectors:
        truth = set(exact_ids(conn, user_id, vector))
        got = set(
            semantic_ids(conn, user_id, vector, model, exact_max=exact_max, ef_search=ef_search)
        )
        found += len(truth & got)
        total += len(truth)
    return found / total if total else 0.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def http_latency(client: Any, queries: list[str], mode: str, warmup: int = 5) -> dict[str, float]:
    times: list[float] = []
    hits = 0
    for i, q in enumerate(queries[:warmup] + queries):
        started = time.perf_counter()
        body = expect(client.get("/api/v1/search", params={"q": q, "mode": mode}), 200)
        elapsed = (time.perf_counter() - started) * 1000
        if i >= warmup:
            times.append(elapsed)
            hits += len(body["items"])
    return {
        "queries": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "mean_hits": round(hits / len(times), 1),
    }


def _login(base_url: str, email: str, *, register: bool = True) -> Any:
    import httpx

    client = httpx.Client(base_url=base_url, timeout=60)
    body = {"email": email, "password": "bench-password-123"}
    if register:
        expect(client.post("/api/v1/auth/register", json=body), 201)
    token = expect(client.post("/api/v1/auth/login", json=body), 200)["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def measure_size(
    args: argparse.Namespace,
    n: int,
    corpus: Corpus,
) -> dict[str, Any]:
    from verbatim import embedded_db
    from verbatim.search import embedding

    result: dict[str, Any] = {
        "chunks": n,
        "real_chunks": min(n, len(corpus.texts)),
    }
    query_texts, model = corpus.queries, corpus.model
    try:
        ef_list = [int(v) for v in str(args.search_ef_search).split(",") if v.strip()]
    except ValueError as exc:
        raise BenchError(f"--search-ef-search: {exc}") from exc
    ef_search = ef_list[0]
    with tempfile.TemporaryDirectory(prefix="bench-search-", dir=args.tmp_dir) as tmp:
        work = Path(tmp)
        pgdata = work / "verbatim-data" / "postgres"
        pgdata.parent.mkdir(parents=True)
        # Our own start, to raise shared_buffers (a restart); `verbatim serve` adopts it.
        server = embedded_db.start(pgdata)
        with psycopg.connect(server.uri, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
        server.stop()
        server = embedded_db.start(pgdata)
        env = {"VERBATIM_SEARCH_EF_SEARCH": str(ef_search)}
        try:
            with verbatim_server(work, env=env) as api:
                clients = {
                    name: _login(api.base_url, f"{name}@bench.example")
                    for name in ("big", "one_pct", "tenth_pct")
                }
                with psycopg.connect(server.uri) as conn:
                    users = {
                        name: conn.execute(
                            'SELECT id FROM "user" WHERE email = %s', (f"{name}@bench.example",)
                        ).fetchone()[0]  # type: ignore[index]
                        for name in clients
                    }
                    # Each user's rows in their own personal tenant, as the service files them.
                    tenants = {
                        name: conn.execute(
                            'SELECT tenant_id FROM "user" WHERE id = %s', (users[name],)
                        ).fetchone()[0]  # type: ignore[index]
                        for name in users
                    }
                    result.update(load(conn, users, tenants, corpus, n))
                    result["index"] = build_indexes(
                        conn, args.search_m, args.search_ef_construction
                    )
                    rng = np.random.default_rng(3)
                    picked = rng.choice(len(query_texts), size=args.search_queries, replace=False)
                    queries = [query_texts[i] for i in picked]
                    qvecs = [np.asarray(v) for v in embedding.embed_passages(queries)[1]]
                    recall_n = len(qvecs)
                    started = time.perf_counter()
                    # big: HNSW with the iterative scan (its scope is far over the exact
                    # threshold); the small users: the service's own choice (exact).
                    result["recall_at_10"] = {
                        name: round(
                            recall(
                                conn,
                                users[name],
                                qvecs[:recall_n],
                                model,
                                exact_max=10_000,
                                ef_search=ef_search,
                            ),
                            3,
                        )
                        for name in ("big", "one_pct", "tenth_pct")
                    }
                    result["recall_at_10"]["queries"] = recall_n
                    # The big user's recall as ef_search grows (the HTTP runs below use
                    # --search-ef-search).
                    result["recall_at_10_big_by_ef_search"] = {
                        str(ef): round(
                            recall(
                                conn,
                                users["big"],
                                qvecs[:recall_n],
                                model,
                                exact_max=10_000,
                                ef_search=ef,
                            ),
                            3,
                        )
                        for ef in sorted({*EF_SWEEP, *ef_list})
                    }
                    print(
                        f"recall@10 of big by ef_search: {result['recall_at_10_big_by_ef_search']}",
                        flush=True,
                    )
                    print(
                        f"recall@10 ({recall_n} queries, {time.perf_counter() - started:.0f} s):"
                        f" {result['recall_at_10']}",
                        flush=True,
                    )
                # Access tokens last 15 minutes, and loading and building 1M rows takes longer.
                for client in clients.values():
                    client.close()
                clients = {
                    name: _login(api.base_url, f"{name}@bench.example", register=False)
                    for name in clients
                }
                result["http"] = {
                    "hybrid_big": http_latency(clients["big"], queries, "hybrid"),
                    "semantic_one_pct": http_latency(clients["one_pct"], queries, "semantic"),
                    "semantic_tenth_pct": http_latency(clients["tenth_pct"], queries, "semantic"),
                    "text_big": http_latency(clients["big"], queries, "text"),
                }
                for name, figures in result["http"].items():
                    print(f"  {name}: {figures}", flush=True)
                for client in clients.values():
                    client.close()
            # Hybrid again at each further ef_search (a server setting: one server each).
            by_ef = {str(ef_search): result["http"]["hybrid_big"]}
            for ef in ef_list[1:]:
                with verbatim_server(work, env={"VERBATIM_SEARCH_EF_SEARCH": str(ef)}) as api:
                    client = _login(api.base_url, "big@bench.example", register=False)
                    by_ef[str(ef)] = http_latency(client, queries, "hybrid")
                    client.close()
                print(f"  hybrid_big at ef_search {ef}: {by_ef[str(ef)]}", flush=True)
            result["hybrid_big_by_ef_search"] = by_ef
        finally:
            if embedded_db.is_running(pgdata):  # a later server may have stopped it already
                server.stop()
    result["settings"] = {
        "m": args.search_m,
        "ef_construction": args.search_ef_construction,
        "ef_search": ef_list,
        "iterative_scan": "relaxed_order",
        "max_scan_tuples": 20000,
        "exact_max_chunks": 10000,
        "shared_buffers": SHARED_BUFFERS,
    }
    recall_by_ef = result["recall_at_10_big_by_ef_search"]
    meeting = [
        int(ef)
        for ef, hybrid in result["hybrid_big_by_ef_search"].items()
        if recall_by_ef[ef] >= TARGET_RECALL and hybrid["p95_ms"] < TARGET_P95_MS
    ]
    result["targets"] = {
        "recall_at_10": TARGET_RECALL,
        "p95_ms_hybrid": TARGET_P95_MS,
        "met": bool(meeting),
        "met_at_ef_search": meeting,
    }
    return result


def calibrate(args: argparse.Namespace, corpus: Corpus, copies: int) -> dict[str, Any]:
    """How far is the synthetic stand-in from real text, at a size where both exist?

    Past the real chunks, the corpus is noisy copies (`copies` per real chunk at the largest
    size). Here the same number of rows is indexed twice with the same HNSW settings: all real
    chunks, then 1/copies of them (chosen at random) with the rest made by the same generator.
    The recall@10 of each (no filter, plain `ORDER BY <=> LIMIT 10`) and how close a query's
    neighbours are to one another say whether the synthetic rows make the index harder or
    easier than text would.
    """
    from pgvector.psycopg import register_vector

    from verbatim import embedded_db
    from verbatim.search import embedding

    n = len(corpus.texts)
    rng = np.random.default_rng(5)
    picked = rng.choice(len(corpus.queries), size=min(200, len(corpus.queries)), replace=False)
    queries = np.asarray(
        embedding.embed_passages([corpus.queries[i] for i in picked])[1], dtype=np.float32
    )
    bases = np.sort(rng.choice(n, size=max(1, n // copies), replace=False))
    sets = {
        "real": corpus.vectors,
        "synthetic": _vector_rows(corpus.vectors[bases], n, np.random.default_rng(11)),
    }
    out: dict[str, Any] = {"rows": n, "copies_per_real_chunk": copies, "queries": len(queries)}
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-", dir=args.tmp_dir) as tmp:
        server = embedded_db.start(Path(tmp) / "postgres")
        try:
            with psycopg.connect(server.uri, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                register_vector(conn)
                conn.execute("SET maintenance_work_mem = '2GB'")
                conn.execute("SET max_parallel_maintenance_workers = 1")
                for name, vectors in sets.items():
                    out[name] = _calibration_figures(conn, vectors, queries, args)
                    print(f"  calibration, {name} ({n} rows): {out[name]}", flush=True)
        finally:
            server.stop()
    return out


def _calibration_figures(
    conn: psycopg.Connection[Any], vectors: np.ndarray, queries: np.ndarray, args: Any
) -> dict[str, Any]:
    conn.execute("DROP TABLE IF EXISTS calibration")
    conn.execute("CREATE TABLE calibration (id int, embedding vector(384))")
    with conn.cursor().copy(
        "COPY calibration (id, embedding) FROM STDIN WITH (FORMAT BINARY)"
    ) as cp:
        cp.set_types(["int4", "vector"])
        for i, vector in enumerate(vectors):
            cp.write_row((i, vector))
    conn.execute(
        "CREATE INDEX ON calibration USING hnsw (embedding vector_cosine_ops)"
        f" WITH (m = {args.search_m}, ef_construction = {args.search_ef_construction})"
    )
    sims = queries @ vectors.T
    truth = np.argsort(-sims, axis=1)[:, :RECALL_K]
    ranked = -np.sort(-sims, axis=1)
    by_ef: dict[str, float] = {}
    for ef in EF_SWEEP:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        found = 0
        for q, vector in enumerate(queries):
            rows = conn.execute(
                "SELECT id FROM calibration ORDER BY embedding <=> %s LIMIT %s", (vector, RECALL_K)
            ).fetchall()
            found += len({r[0] for r in rows} & set(truth[q].tolist()))
        by_ef[str(ef)] = round(found / (RECALL_K * len(queries)), 3)
    return {
        "recall_at_10_by_ef_search": by_ef,
        # Cosine similarity of a query's 1st and 10th nearest rows: the smaller the gap, the
        # closer to a tie the 10th place is, and the harder for a graph index to get right.
        "query_1st_similarity": round(float(np.median(ranked[:, 0])), 3),
        "query_10th_similarity": round(float(np.median(ranked[:, RECALL_K - 1])), 3),
        "gap_1st_10th": round(float(np.median(ranked[:, 0] - ranked[:, RECALL_K - 1])), 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        sizes = [int(s) for s in str(args.search_sizes).split(",") if s.strip()]
    except ValueError as exc:
        raise BenchError(f"--search-sizes: {exc}") from exc
    corpus = build_corpus(args.search_base_chunks)
    print(
        f"corpus: {len(corpus.texts)} real chunks from {len(set(corpus.documents.tolist()))}"
        f" documents, {len(corpus.queries)} held-out queries, {corpus.model}"
    )
    if len(corpus.queries) < args.search_queries:
        raise BenchError(f"only {len(corpus.queries)} held-out queries")
    results: dict[str, Any] = {
        "real_chunks": len(corpus.texts),
        "model": corpus.model,
        "sizes": {},
    }
    copies = max(1, round(max(sizes) / len(corpus.texts)))
    if args.search_calibrate and copies > 1:
        print(f"\n-- calibration: real text against the synthetic rows ({copies} per chunk)")
        results["calibration"] = calibrate(args, corpus, copies)
    for n in sizes:
        print(f"\n-- {n} chunks", flush=True)
        results["sizes"][str(n)] = measure_size(args, n, corpus)
    return results
