"""Library-scale benchmark (issue 15): lists, reads and exports with a large and a small user.

One embedded PostgreSQL and one `verbatim serve` (no worker) on it. Two users are registered
through the API; their libraries are written straight into the tables with COPY:

- large: N audio files, N transcriptions (10 segments each), N jobs, for each N of --sizes
  (default 10,000 then 100,000: the second size tops the first up), plus one 30,000-word
  transcript (1,000 segments of 30 timed words);
- small: 100 of each.

After each size (VACUUM ANALYZE first) it prints p50/p95 over --requests sequential requests
for every list (and its filters) and every single read, for both users; the deep page (a cursor
taken 90% of the way through, found by walking the whole list, which also checks that the walk
sees every row once) and the largest offset against the first page; the big transcript and its
exports; and 50 concurrent clients listing audio (req/s, p95, errors).

Then, straight on the database: the EXPLAIN ANALYZE of each list query exactly as the service
sends it (captured from the driver) for the large user, failing loudly on a sequential scan of a
library table; and the plan-leak check: on ONE connection, the small user's list after ten of
the large user's, with the engine's `plan_cache_mode = force_custom_plan` against PostgreSQL's
default (`auto`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench.common import (
    ApiClient,
    BenchError,
    ServerProcess,
    ensure_postgres_stopped,
    expect,
    verbatim_server,
)

SMALL = 100
SEGMENTS_PER = 10
BIG_SEGMENTS = 1000
BIG_WORDS_PER_SEGMENT = 30
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
CONCURRENT_CLIENTS = 50
SECRET = "bench-scale-secret-" + "s" * 40

# Targets from issue 15.
LIST_P95_MS = 50.0
BIG_GET_P95_MS = 100.0
EXPORT_P95_MS = 150.0
CONCURRENT_RPS = 150.0
LIBRARY_TABLES = ("audio_file", "transcription", "job", "segment")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="library sizes of the large user, measured in turn (scale; default 10000,100000)",
    )
    parser.add_argument(
        "--requests", type=int, default=50, help="sequential requests per case (scale)"
    )
    parser.add_argument(
        "--concurrent-s", type=float, default=15.0, help="seconds of 50 clients (scale)"
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=2,
        help="API processes of the second server the 50 clients also run against (scale; "
        "VERBATIM_API_WORKERS, one per core; 1 skips it)",
    )


# --- seeding ---------------------------------------------------------------------------------


@dataclass
class Owner:
    client: ApiClient
    user_id: str
    tenant_id: str
    audio: list[str]
    transcriptions: list[str]
    jobs: list[str]
    logged_in_at: float = 0.0

    def fresh(self) -> httpx.Client:
        """The client, logged in again when its access token (15 min) is getting old."""
        if time.monotonic() - self.logged_in_at > 300:
            self.client.login()
            self.logged_in_at = time.monotonic()
        return self.client.http


def _ts(i: int) -> str:
    # Two rows per timestamp: ties on created_at everywhere.
    return (BASE_TIME + timedelta(seconds=(i // 2) * 300)).isoformat()


PHRASES = [
    " ".join(random.Random(k).choices(["alpha", "budget", "meeting", "notes", "river"], k=120))
    for k in range(20)
]


def _copy(conn: psycopg.Connection[Any], table: str, columns: str, lines: Iterator[str]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for n, line in enumerate(lines, 1):
            buffer.write(line)
            if n % 20000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def seed(conn: psycopg.Connection[Any], owner: Owner, start: int, stop: int) -> None:
    """Rows start..stop-1 of `owner`'s library (audio, transcription + segments, job)."""
    u, t = owner.user_id, owner.tenant_id
    ids = [(uuid.uuid4(), uuid.uuid4(), uuid.uuid4()) for _ in range(start, stop)]

    def audio() -> Iterator[str]:
        for i, (a, _, _) in zip(range(start, stop), ids, strict=True):
            download = i % 10 == 0
            source = "download" if download else "upload"
            url = f"https://media.example.com/v/{i}" if download else "\\N"
            yield (
                f"{a}\t{_ts(i)}\t{u}\t{t}\tuploads/{a}\tmeeting-{i}.m4a\t{1_000_000 + i}\t"
                f"{a.hex}{a.hex}\taudio/mp4\tmp4\taac\t{600 + i % 600}\t44100\t2\tf\t{source}\t"
                f"{url}\t\\N\t\\N\n"
            )

    _copy(
        conn,
        "audio_file",
        "id, created_at, user_id, tenant_id, storage_key, original_filename, size_bytes, sha256, "
        "mime_type, container, codec, duration, sample_rate, channels, has_video, source_type, "
        "source_url, platform, title",
        audio(),
    )

    def status(i: int) -> str:
        if i % 1000 == 7:
            return "running"
        return {0: "failed", 1: "pending"}.get(i % 20, "completed")

    def transcriptions() -> Iterator[str]:
        for i, (a, tr, _) in zip(range(start, stop), ids, strict=True):
            s = status(i)
            done = _ts(i) if s == "completed" else "\\N"
            text = PHRASES[i % len(PHRASES)] if s == "completed" else "\\N"
            language = "de" if i % 10 == 3 else "en"
            yield (
                f"{tr}\t{_ts(i)}\t{u}\t{t}\t{a}\t{s}\t{language}\t0.98\tmono\tfaster-whisper\t"
                f"tiny.en\t1\t"
                '{"beam_size": 5, "vad_filter": false, "word_timestamps": true}\t'
                f"{text}\t0.91\t120\t{600 + i % 600}\t30.5\t"
                '{"avg_logprob": -0.31, "low_confidence_ratio": 0.04}\t'
                f"{done}\n"
            )

    _copy(
        conn,
        "transcription",
        "id, created_at, user_id, tenant_id, audio_file_id, status, language, "
        "language_probability, mode, engine, model_name, model_version, options, text, "
        "avg_confidence, word_count, duration, processing_time_s, quality, completed_at",
        transcriptions(),
    )

    def segments() -> Iterator[str]:
        for _, tr, _ in ids:
            for k in range(SEGMENTS_PER):
                s = k * 3.0
                words = (
                    f'[{{"start": {s}, "end": {s + 0.4}, "word": " alpha", "probability": 0.93}}, '
                    f'{{"start": {s + 0.5}, "end": {s + 0.9}, "word": " budget", '
                    f'"probability": 0.88}}]'
                )
                yield f"{tr}\t{k}\t{s}\t{s + 2.5}\t alpha budget {k}\t0.9\t{words}\n"

    _copy(
        conn,
        "segment",
        'transcription_id, index, start, "end", text, confidence, words',
        segments(),
    )

    def jobs() -> Iterator[str]:
        for i, (a, tr, j) in zip(range(start, stop), ids, strict=True):
            kind = "download" if i % 10 == 0 else "transcription"
            s = status(i)
            ts = _ts(i)
            yield (
                f"{j}\t{ts}\t{ts}\t{u}\t{t}\t{kind}\t{s}\t{100.0 if s == 'completed' else 0.0}\t"
                f"done\t1\t{a}\t{tr}\t{{}}\t{ts}\t{ts if s == 'completed' else chr(92) + 'N'}\n"
            )

    _copy(
        conn,
        "job",
        "id, created_at, updated_at, user_id, tenant_id, type, status, progress, stage, attempts, "
        "audio_file_id, transcription_id, payload, started_at, finished_at",
        jobs(),
    )
    conn.commit()
    owner.audio += [str(a) for a, _, _ in ids[:200]]
    owner.transcriptions += [str(tr) for _, tr, _ in ids[:200]]
    owner.jobs += [str(j) for _, _, j in ids[:200]]


def seed_big_transcript(conn: psycopg.Connection[Any], owner: Owner) -> str:
    """One completed transcription of 30,000 timed words (1,000 segments), made today."""
    a, tr = uuid.uuid4(), uuid.uuid4()
    vocabulary = ["alpha", "budget", "meeting", "notes", "river", "quarterly", "agreed", "next"]
    rng = random.Random(15)
    segment_lines: list[str] = []
    texts: list[str] = []
    clock = 0.0
    for k in range(BIG_SEGMENTS):
        words = []
        start = clock
        for _ in range(BIG_WORDS_PER_SEGMENT):
            word = rng.choice(vocabulary)
            words.append(
                {
                    "start": round(clock, 3),
                    "end": round(clock + 0.3, 3),
                    "word": f" {word}",
                    "probability": round(rng.uniform(0.6, 1.0), 4),
                }
            )
            clock += 0.36
        text = "".join(w["word"] for w in words)
        texts.append(text.strip())
        segment_lines.append(
            f"{tr}\t{k}\t{start:.3f}\t{clock:.3f}\t{text}\t0.9\t{json.dumps(words)}\n"
        )
        clock += 0.5
    now = datetime.now(UTC).isoformat()
    u, t = owner.user_id, owner.tenant_id
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO audio_file (id, created_at, user_id, tenant_id, storage_key, "
            "original_filename, size_bytes, sha256, mime_type, container, codec, duration, "
            "has_video, source_type) VALUES (%s, %s, %s, %s, %s, 'three hours.m4a', 1, %s, "
            "'audio/mp4', 'mp4', 'aac', %s, false, 'upload')",
            (a, now, u, t, f"uploads/{a}", a.hex * 2, clock),
        )
        cur.execute(
            "INSERT INTO transcription (id, created_at, user_id, tenant_id, audio_file_id, "
            "status, language, mode, engine, model_name, options, text, word_count, duration, "
            "quality, completed_at) VALUES (%s, %s, %s, %s, %s, 'completed', 'en', 'mono', "
            "'faster-whisper', 'tiny.en', '{}', %s, %s, %s, '{\"avg_logprob\": -0.3}', %s)",
            (tr, now, u, t, a, " ".join(texts), BIG_SEGMENTS * BIG_WORDS_PER_SEGMENT, clock, now),
        )
    _copy(
        conn,
        "segment",
        'transcription_id, index, start, "end", text, confidence, words',
        iter(segment_lines),
    )
    conn.commit()
    return str(tr)


def vacuum_analyze(uri: str) -> float:
    started = time.perf_counter()
    with psycopg.connect(uri, autocommit=True) as conn:
        for table in LIBRARY_TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


# --- measuring -------------------------------------------------------------------------------


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: list[float], cpu: bool = True) -> dict[str, float]:
    out = {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(pct(samples, 0.95), 2),
        "n": len(samples),
    }
    if cpu:
        out["api_cpu_ms"] = LAST_CPU_MS[0]
    return out


# The API process, whose CPU time per request is reported next to the latencies: on a machine
# shared with other work the latencies carry the wait for a core, the CPU time does not.
API_PROCESS: list[psutil.Process] = []
LAST_CPU_MS: list[float] = [0.0]


def cpu_s() -> float:
    if not API_PROCESS:
        return 0.0
    times = API_PROCESS[0].cpu_times()
    return float(times.user + times.system)


def timed(
    http: httpx.Client, paths: list[str], n: int, params: dict[str, Any] | None = None
) -> list[float]:
    """`n` sequential GETs (cycling through `paths`) after 3 unmeasured ones; ms each. The API
    process's CPU ms per request is left in LAST_CPU_MS."""
    for path in paths[:3]:
        expect(http.get(path, params=params), 200) if "export" not in path else None
    samples = []
    cpu_before = cpu_s()
    for k in range(n):
        path = paths[k % len(paths)]
        started = time.perf_counter()
        response = http.get(path, params=params)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise BenchError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        samples.append(elapsed)
    LAST_CPU_MS[0] = round((cpu_s() - cpu_before) * 1000 / n, 2)
    return samples


def first_exports(
    http: httpx.Client, uri: str, transcription_id: str, fmt: str, n: int
) -> list[float]:
    """`n` exports of the transcript, its recording renamed before each (a new document each
    time, as after an edit); ms each, the API's CPU ms per request in LAST_CPU_MS."""
    path = f"/api/v1/transcriptions/{transcription_id}/export"
    samples: list[float] = []
    cpu = 0.0
    with psycopg.connect(uri, autocommit=True) as conn:
        for k in range(n):
            conn.execute(
                "UPDATE audio_file SET original_filename = %s WHERE id ="
                " (SELECT audio_file_id FROM transcription WHERE id = %s)",
                (f"big-{fmt}-{k}-{uuid.uuid4().hex[:8]}.m4a", transcription_id),
            )
            cpu_before = cpu_s()
            started = time.perf_counter()
            response = http.get(path, params={"format": fmt})
            samples.append((time.perf_counter() - started) * 1000)
            cpu += cpu_s() - cpu_before
            if response.status_code != 200:
                raise BenchError(f"GET {path} answered {response.status_code}")
    LAST_CPU_MS[0] = round(cpu * 1000 / n, 2)
    return samples


def walk(http: httpx.Client, path: str) -> tuple[int, list[str]]:
    """Follow next_cursor through the whole list (500 a page): rows seen, every cursor."""
    seen: set[str] = set()
    cursors: list[str] = []
    count = 0
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = expect(http.get(path, params=params), 200)
        count += len(page["items"])
        seen.update(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        cursors.append(cursor)
    if len(seen) != count:
        raise BenchError(f"{path}: the cursor walk saw {count - len(seen)} rows twice")
    return count, cursors


class _KeepAliveClient:
    """One HTTP/1.1 keep-alive connection, GET only, as lean as a load generator needs to be
    (wrk-like): on this 2-core machine httpx's own CPU (about 5 ms a request) took a quarter
    of what the server could have used, so the figure measured the client too."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = f"Host: {host}:{port}\r\nAuthorization: {token}\r\n\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.head)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise BenchError("chunked answers are not read by this client")
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = None


async def concurrent_clients(
    base_url: str, token: str, path: str, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    url = httpx.URL(base_url)
    host, port = url.host, int(url.port or 80)

    async def one() -> None:
        nonlocal errors
        client = _KeepAliveClient(host, port, token)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    ok = await client.get(path) == 200
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                    await client.close()
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(CONCURRENT_CLIENTS)))
    elapsed = time.perf_counter() - started
    return {
        "clients": CONCURRENT_CLIENTS,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "req_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
        **summary(latencies or [0.0], cpu=False),
    }


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def minted_cursor(uri: str, table: str, path: str, user_id: str) -> tuple[int, str | None]:
    """Rows of the user in `table`, and a cursor after the row 90% of the way down the list."""
    from verbatim.kit.pagination import cursor_key, encode_cursor

    with psycopg.connect(uri) as conn:
        count = conn.execute(f"SELECT count(*) FROM {table} WHERE user_id = %s", (user_id,))
        total = int(count.fetchone()[0])  # type: ignore[index]
        row = conn.execute(
            f"SELECT created_at, id FROM {table} WHERE user_id = %s "
            "ORDER BY created_at DESC, id OFFSET %s LIMIT 1",
            (user_id, int(total * 0.9)),
        ).fetchone()
    if row is None:
        return total, None
    return total, encode_cursor(cursor_key(SECRET), path, row[0], row[1])


def measure_http(
    server: ServerProcess,
    uri: str,
    large: Owner,
    small: Owner,
    big_id: str,
    args: argparse.Namespace,
    multi: ServerProcess | None = None,
) -> dict[str, Any]:
    n = args.requests
    results: dict[str, Any] = {}
    lists = [
        ("audio", "/api/v1/audio", {"limit": 50}),
        ("audio source=download", "/api/v1/audio", {"limit": 50, "source_type": "download"}),
        ("transcriptions", "/api/v1/transcriptions", {"limit": 50}),
        ("transcriptions status=completed", "/api/v1/transcriptions", {"status": "completed"}),
        ("transcriptions status=failed", "/api/v1/transcriptions", {"status": "failed"}),
        ("transcriptions status=running", "/api/v1/transcriptions", {"status": "running"}),
        ("transcriptions language=de", "/api/v1/transcriptions", {"language": "de"}),
        ("jobs", "/api/v1/jobs", {"limit": 50}),
        ("jobs status=failed", "/api/v1/jobs", {"status": "failed"}),
        ("jobs type=download", "/api/v1/jobs", {"type": "download"}),
        ("downloads", "/api/v1/audio/downloads", {}),
    ]
    print(
        f"  {'request':<44}{'large p50/p95 ms':>20}{'small p50/p95 ms':>20}  ratio p95"
        "  (API CPU ms/request large, small)"
    )
    for name, path, params in lists:
        row: dict[str, Any] = {}
        for who, owner in (("large", large), ("small", small)):
            row[who] = summary(timed(owner.fresh(), [path], n, params))
        row["ok"] = row["large"]["p95_ms"] < LIST_P95_MS and row["small"]["p95_ms"] < LIST_P95_MS
        results[f"list {name}"] = row
        _print_row(f"GET {name}", row)
    gets = [
        ("audio/{id}", lambda o: [f"/api/v1/audio/{i}" for i in o.audio[:50]]),
        (
            "transcriptions/{id}",
            lambda o: [f"/api/v1/transcriptions/{i}" for i in o.transcriptions[:50]],
        ),
        ("jobs/{id}", lambda o: [f"/api/v1/jobs/{i}" for i in o.jobs[:50]]),
        (
            "transcriptions?audio_file_id=",
            lambda o: [f"/api/v1/transcriptions?audio_file_id={i}" for i in o.audio[:50]],
        ),
    ]
    for name, paths in gets:
        row = {
            who: summary(timed(o.fresh(), paths(o), n))
            for who, o in (("large", large), ("small", small))
        }
        row["ok"] = row["large"]["p95_ms"] < LIST_P95_MS and row["small"]["p95_ms"] < LIST_P95_MS
        results[f"get {name}"] = row
        _print_row(f"GET {name}", row)

    # Deep pages: a cursor 90% of the way through each list, and the largest offset allowed.
    # The audio list is walked whole through the API (every row exactly once); the other two
    # get their cursor minted from the row at 90% (the benchmark knows the server's secret).
    for name, path, table in (
        ("audio", "/api/v1/audio", "audio_file"),
        ("transcriptions", "/api/v1/transcriptions", "transcription"),
        ("jobs", "/api/v1/jobs", "job"),
    ):
        http = large.fresh()
        started = time.perf_counter()
        if table == "audio_file":
            count, cursors = walk(http, path)
            deep = cursors[int(len(cursors) * 0.9)] if cursors else None
            stored, _ = minted_cursor(uri, table, path, large.user_id)
            if stored != count:
                raise BenchError(f"{path}: the cursor walk saw {count} of {stored} rows")
        else:
            count, deep = minted_cursor(uri, table, path, large.user_id)
        walk_s = time.perf_counter() - started
        how = "walked, each row once" if table == "audio_file" else "cursor minted"
        first = summary(timed(http, [path], n, {"limit": 50}))
        row = {"rows": count, "how": how, "walk_s": round(walk_s, 2), "first": first}
        if deep:
            row["deep_cursor"] = summary(timed(http, [path], n, {"limit": 50, "cursor": deep}))
        row["max_offset"] = summary(timed(http, [path], n, {"limit": 50, "offset": 10_000}))
        row["ratio_deep_first_p95"] = round(
            row.get("deep_cursor", first)["p95_ms"] / first["p95_ms"], 2
        )
        results[f"deep {name}"] = row
        print(
            f"  deep {name}: {count} rows ({how} in {walk_s:.1f} s); first page "
            f"p95 {first['p95_ms']} ms, cursor at 90% p95 "
            f"{row.get('deep_cursor', {}).get('p95_ms')} ms "
            f"(x{row['ratio_deep_first_p95']}), offset=10000 p95 {row['max_offset']['p95_ms']} ms"
        )

    # The 30,000-word transcript: GET (default page, the largest page, no words), exports.
    big = f"/api/v1/transcriptions/{big_id}"
    big_cases = [
        ("GET big transcript (200 segments)", big, {}, BIG_GET_P95_MS),
        ("GET big transcript (500 segments)", big, {"segments_limit": 500}, BIG_GET_P95_MS),
        (
            "GET big transcript (500, words=false)",
            big,
            {"segments_limit": 500, "words": "false"},
            BIG_GET_P95_MS,
        ),
        (
            "GET big segments offset=500 limit=500",
            f"{big}/segments",
            {"limit": 500, "offset": 500},
            BIG_GET_P95_MS,
        ),
    ]
    for fmt in ("srt", "vtt", "txt", "json"):
        big_cases.append(
            (f"export {fmt}, repeated", f"{big}/export", {"format": fmt}, EXPORT_P95_MS)
        )
    for name, path, params, target in big_cases:
        http = large.fresh()
        samples = timed(http, [path], max(20, n // 3), params)
        size = len(http.get(path, params=params).content)
        row = {**summary(samples), "bytes": size, "target_p95_ms": target}
        cpu_note = f"API CPU {row['api_cpu_ms']} ms/request"
        row["ok"] = row["p95_ms"] < target
        results[name] = row
        print(
            f"  {name:<44} p50 {row['p50_ms']:>7} p95 {row['p95_ms']:>7} ms  "
            f"{size / 1e6:.2f} MB  {mark(row['ok'])} (< {target:.0f}); {cpu_note}"
        )
    # A first export: the title changes before each request, so every one is laid out anew
    # (the repeats above are served from the export cache while their inputs are unchanged).
    for fmt in ("srt", "vtt"):
        name = f"export {fmt}, first time (laid out)"
        http = large.fresh()
        samples = first_exports(http, uri, big_id, fmt, max(20, n // 3))
        row = {**summary(samples), "target_p95_ms": EXPORT_P95_MS}
        row["ok"] = row["p95_ms"] < EXPORT_P95_MS
        results[name] = row
        print(
            f"  {name:<44} p50 {row['p50_ms']:>7} p95 {row['p95_ms']:>7} ms  "
            f"{mark(row['ok'])} (< {EXPORT_P95_MS:.0f}); API CPU {row['api_cpu_ms']} ms/request"
        )
    started = time.perf_counter()
    whole = expect(http.get(big, params={"segments_limit": 500}), 200)
    rest = expect(http.get(f"{big}/segments", params={"limit": 500, "offset": 500}), 200)
    whole_ms = (time.perf_counter() - started) * 1000
    words = sum(len(s["words"]) for s in whole["segments"] + rest["items"])
    if words != BIG_SEGMENTS * BIG_WORDS_PER_SEGMENT:
        raise BenchError(f"the big transcript came back with {words} words")
    results["big transcript, all 30,000 words in two requests"] = {"ms": round(whole_ms, 1)}
    print(f"  all 30,000 words (GET 500 + /segments 500): {whole_ms:.1f} ms")

    token = large.fresh().headers["Authorization"]
    runs = [("1 API process", server.base_url)]
    if multi is not None:
        runs.append((f"{args.api_workers} API processes", multi.base_url))
    for label, base_url in runs:
        load = asyncio.run(concurrent_clients(base_url, token, "/api/v1/audio", args.concurrent_s))
        load["ok"] = load["req_per_s"] >= CONCURRENT_RPS and load["errors"] == 0
        results[f"concurrent, {label}"] = load
        print(
            f"  {CONCURRENT_CLIENTS} clients GET /api/v1/audio for {load['seconds']} s, {label}: "
            f"{load['req_per_s']} req/s, p50 {load['p50_ms']} p95 {load['p95_ms']} ms, "
            f"{load['errors']} errors  {mark(load['ok'])} (>= {CONCURRENT_RPS:.0f} req/s, "
            "0 errors)"
        )
    first, last = results[f"concurrent, {runs[0][0]}"], results[f"concurrent, {runs[-1][0]}"]
    if len(runs) > 1 and first["req_per_s"]:
        print(f"  ratio {runs[-1][0]} / 1: x{last['req_per_s'] / first['req_per_s']:.2f}")
    results["concurrent"] = last
    return results


def _print_row(name: str, row: dict[str, Any]) -> None:
    large, small = row["large"], row["small"]
    ratio = large["p95_ms"] / small["p95_ms"] if small["p95_ms"] else 0.0
    print(
        f"  {name:<44}{large['p50_ms']:>9}/{large['p95_ms']:<9}{small['p50_ms']:>10}/"
        f"{small['p95_ms']:<9} x{ratio:.2f}  {mark(row['ok'])}"
        f"  ({large['api_cpu_ms']}, {small['api_cpu_ms']})"
    )


# --- straight on the database: plans ---------------------------------------------------------


async def explain_lists(url: str, large: Owner, size: int) -> tuple[dict[str, Any], list[str]]:
    """EXPLAIN ANALYZE of every list query as the service sends it, for the large user."""
    from sqlalchemy import event

    from verbatim.audio.service import list_audio
    from verbatim.db import make_engine, make_sessionmaker
    from verbatim.jobs.service import list_jobs
    from verbatim.kit.pagination import PageRequest
    from verbatim.models import JobStatus, JobType, SourceType, TranscriptionStatus
    from verbatim.transcriptions.service import list_transcriptions

    engine = make_engine(url, 2)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *a: Any) -> None:
        if not statement.lstrip().upper().startswith(("EXPLAIN", "SELECT PG_", "SHOW")):
            captured.append((statement, parameters))

    user = _UserRef(uuid.UUID(large.user_id), uuid.UUID(large.tenant_id))
    page = PageRequest(limit=50, key=b"bench", scope="bench")
    # The deepest offset allowed, or half the library when it is smaller than that.
    deep = PageRequest(limit=50, offset=min(10_000, size // 2), key=b"bench", scope="bench")
    cases = {
        "audio": lambda s: list_audio(s, user, source_type=None, page=page),
        "audio source=download": lambda s: list_audio(
            s, user, source_type=SourceType.download, page=page
        ),
        f"audio offset={deep.offset}": lambda s: list_audio(s, user, source_type=None, page=deep),
        "transcriptions": lambda s: list_transcriptions(
            s, user, status=None, audio_file_id=None, language=None, page=page
        ),
        "transcriptions status=completed": lambda s: list_transcriptions(
            s,
            user,
            status=TranscriptionStatus.completed,
            audio_file_id=None,
            language=None,
            page=page,
        ),
        "transcriptions status=running": lambda s: list_transcriptions(
            s,
            user,
            status=TranscriptionStatus.running,
            audio_file_id=None,
            language=None,
            page=page,
        ),
        "transcriptions language=de": lambda s: list_transcriptions(
            s, user, status=None, audio_file_id=None, language="de", page=page
        ),
        "transcriptions audio_file_id": lambda s: list_transcriptions(
            s, user, status=None, audio_file_id=uuid.UUID(large.audio[0]), language=None, page=page
        ),
        "jobs": lambda s: list_jobs(s, user, status=None, type=None, page=page),
        "jobs status=failed": lambda s: list_jobs(
            s, user, status=JobStatus.failed, type=None, page=page
        ),
        "jobs type=download": lambda s: list_jobs(
            s, user, status=None, type=JobType.download, page=page
        ),
    }
    results: dict[str, Any] = {}
    seq_scans: list[str] = []
    sessionmaker = make_sessionmaker(engine)
    try:
        for name, call in cases.items():
            captured.clear()
            event.listen(engine.sync_engine, "before_cursor_execute", capture)
            try:
                async with sessionmaker() as session:
                    await call(session)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", capture)
            plans = []
            async with engine.connect() as conn:
                for statement, parameters in list(captured):
                    result = await conn.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS OFF) " + statement, parameters
                    )
                    plans.append([row[0] for row in result])
            results[name] = plans
            print(f"\n  EXPLAIN ANALYZE list {name} (large user):")
            for plan in plans:
                for line in plan:
                    print(f"    {line}")
                    if "Seq Scan" in line and any(f" on {t}" in line for t in LIBRARY_TABLES):
                        seq_scans.append(f"{name}: {line.strip()}")
                print("    --")
    finally:
        await engine.dispose()
    return results, seq_scans


@dataclass(frozen=True)
class _UserRef:
    """What the services read of a user: its id and, for the ownership filter, its tenant."""

    id: uuid.UUID
    tenant_id: uuid.UUID


async def plan_leak(url: str, large: Owner, small: Owner, n: int) -> dict[str, Any]:
    """The small user's list on one connection right after ten of the large user's."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from verbatim.db import make_engine, make_sessionmaker
    from verbatim.kit.pagination import PageRequest
    from verbatim.models import TranscriptionStatus
    from verbatim.transcriptions.service import list_transcriptions

    page = PageRequest(limit=50, key=b"bench", scope="bench")

    async def run_list(session: Any, owner: Owner) -> None:
        await list_transcriptions(
            session,
            _UserRef(uuid.UUID(owner.user_id), uuid.UUID(owner.tenant_id)),
            status=TranscriptionStatus.completed,
            audio_file_id=None,
            language=None,
            page=page,
        )

    results: dict[str, Any] = {}
    engines = {
        "force_custom_plan (Verbatim)": make_engine(url, 1),
        "auto (PostgreSQL default)": create_async_engine(url, pool_size=1, max_overflow=0),
    }
    for name, engine in engines.items():
        sessionmaker = make_sessionmaker(engine)
        try:
            before: list[float] = []
            async with sessionmaker() as session:
                mode = (await session.execute(_show())).scalar_one()
                for _ in range(n):
                    started = time.perf_counter()
                    await run_list(session, small)
                    before.append((time.perf_counter() - started) * 1000)
            after: list[float] = []
            for _ in range(3):
                async with sessionmaker() as session:
                    for _ in range(10):
                        await run_list(session, large)
                    for _ in range(n // 3):
                        started = time.perf_counter()
                        await run_list(session, small)
                        after.append((time.perf_counter() - started) * 1000)
        finally:
            await engine.dispose()
        row = {
            "plan_cache_mode": mode,
            "small_alone": summary(before),
            "small_after_large": summary(after),
        }
        row["ratio_p95"] = round(
            row["small_after_large"]["p95_ms"] / row["small_alone"]["p95_ms"], 2
        )
        results[name] = row
        print(
            f"  {name:<30} small user alone p95 {row['small_alone']['p95_ms']} ms, after the "
            f"large user's on the same connection p95 {row['small_after_large']['p95_ms']} ms "
            f"(x{row['ratio_p95']})"
        )
    return results


def _show() -> Any:
    from sqlalchemy import text

    return text("SHOW plan_cache_mode")


# --- the run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def database(work: Path) -> Iterator[str]:
    from verbatim import embedded_db, migrate

    server = embedded_db.start(work / "pg")
    try:
        migrate.upgrade(server.sqlalchemy_url)
        yield server.uri
    finally:
        server.stop()
        ensure_postgres_stopped(work / "pg")


def owner_of(server: ServerProcess) -> Owner:
    client = ApiClient(server.base_url)
    client.__enter__()
    me = client.get_json("/api/v1/auth/me")
    return Owner(client, me["id"], me["tenant_id"], [], [], [], time.monotonic())


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if sorted(sizes) != sizes or not sizes or sizes[0] < SMALL:
        raise BenchError("--sizes must grow, from at least 100")
    started = time.perf_counter()
    out: dict[str, Any] = {"sizes": {}}
    tmp = Path(tempfile.mkdtemp(prefix="verbatim-bench-scale-", dir=args.tmp_dir))
    with database(tmp) as uri:
        from verbatim.embedded_db import to_sqlalchemy_url

        url = to_sqlalchemy_url(uri)
        env = {
            "VERBATIM_DATABASE_URL": uri,
            "VERBATIM_SECRET_KEY": SECRET,
            "VERBATIM_RUN_WORKER_IN_API": "false",
            "VERBATIM_AUTO_MIGRATE": "false",
        }
        with contextlib.ExitStack() as servers:
            server = servers.enter_context(verbatim_server(tmp, env=env))
            multi = None
            if args.api_workers > 1:
                # The same service with one API process per core (VERBATIM_API_WORKERS), for
                # the 50 clients: started now so its start is not measured.
                multi = servers.enter_context(
                    verbatim_server(
                        tmp / "multi", env={**env, "VERBATIM_API_WORKERS": str(args.api_workers)}
                    )
                )
            API_PROCESS[:] = [psutil.Process(server.pid)]
            large, small = owner_of(server), owner_of(server)
            try:
                with psycopg.connect(uri) as conn:
                    t0 = time.perf_counter()
                    seed(conn, small, 0, SMALL)
                    big_id = seed_big_transcript(conn, large)
                    print(
                        "small user and the 30,000-word transcript seeded in "
                        f"{time.perf_counter() - t0:.1f} s"
                    )
                done = 0
                for size in sizes:
                    print(
                        f"\n## large user: {size} audio, transcriptions, jobs; "
                        f"{size * SEGMENTS_PER} segments"
                    )
                    t0 = time.perf_counter()
                    with psycopg.connect(uri) as conn:
                        seed(conn, large, done, size)
                    done = size
                    seeded_s = time.perf_counter() - t0
                    vacuum_s = vacuum_analyze(uri)
                    print(
                        f"  seeded with COPY in {seeded_s:.1f} s, VACUUM ANALYZE {vacuum_s:.1f} s\n"
                    )
                    load = [round(x, 2) for x in os.getloadavg()]
                    print(f"  load average before measuring: {load} on {os.cpu_count()} CPUs")
                    section: dict[str, Any] = {
                        "load_average": load,
                        "seed_s": round(seeded_s, 1),
                        "vacuum_s": round(vacuum_s, 1),
                    }
                    section["http"] = measure_http(server, uri, large, small, big_id, args, multi)
                    print("\n  plan leak, one connection (transcriptions?status=completed):")
                    section["plan_leak"] = asyncio.run(plan_leak(url, large, small, 60))
                    plans, seq_scans = asyncio.run(explain_lists(url, large, size))
                    section["explain"] = plans
                    section["seq_scans"] = seq_scans
                    out["sizes"][str(size)] = section
                    if seq_scans:
                        print("\n  SEQUENTIAL SCANS for the large user:")
                        for line in seq_scans:
                            print(f"    {line}")
                        raise BenchError(
                            f"{len(seq_scans)} list queries scan a whole table at {size}"
                        )
            finally:
                large.client.__exit__()
                small.client.__exit__()
    out["total_s"] = round(time.perf_counter() - started, 1)
    _print_flatness(out)
    print(f"\nscale benchmark took {out['total_s']} s")
    return out


def _print_flatness(out: dict[str, Any]) -> None:
    sizes = list(out["sizes"])
    if len(sizes) < 2:
        return
    first, last = out["sizes"][sizes[0]]["http"], out["sizes"][sizes[-1]]["http"]
    print(f"\n## growth: p95 at {sizes[-1]} / p95 at {sizes[0]} (large user)")
    for name, row in last.items():
        if isinstance(row, dict) and "large" in row and name in first:
            ratio = row["large"]["p95_ms"] / first[name]["large"]["p95_ms"]
            print(
                f"  {name:<48} {first[name]['large']['p95_ms']:>7} -> "
                f"{row['large']['p95_ms']:>7} ms  x{ratio:.2f}"
            )
