"""Live events benchmark: 500 open server-sent event streams on one API process.

A real `verbatim serve` subprocess (no worker inside: the benchmark plays the worker) on an
embedded PostgreSQL the benchmark starts, with the default pool (10 connections plus 10
overflow). 10 users each have one pending job and open --streams/10 streams: half on
`/api/v1/jobs/{id}/events`, half on `/api/v1/events`. The benchmark then writes --rounds
progress updates to every job straight into the database (as a worker on another machine
would; the job_event trigger sends the NOTIFY) and records, for every stream, when each update
arrives.

Reported: the API process's database connections (from pg_stat_activity) and memory with the
streams open, events delivered and missing, and event latency p50/p95 from commit to the
client. The reference, measured in the same run, is polling: the same number of clients each
GET /api/v1/jobs/{id} once a second, with the latency to see each update and the connections
that takes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench.common import (
    REPO_ROOT,
    BenchError,
    child_env,
    free_port,
    start_process,
    stop_process,
    wait_until_ok,
)

USERS = 10
# Streams opened at once, then the next wave once all of those are open (clients arriving, not
# one burst: 500 openings in the same instant are 500 concurrent requests for any endpoint).
WAVE = 50
POLL_EVERY_S = 1.0
ROUND_EVERY_S = 0.5
CONNECTIONS = """SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"""
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "speech.wav"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sse")
    group.add_argument("--streams", type=int, default=500, help="open streams (default 500)")
    group.add_argument("--rounds", type=int, default=20, help="updates per job (default 20)")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Sampler:
    """The API process's peak connections and memory while a phase runs."""

    def __init__(self, db: psycopg.Connection[Any], proc: psutil.Process) -> None:
        self.db, self.proc = db, proc
        self.max_connections = 0
        self.max_rss = 0

    def sample(self) -> None:
        row = self.db.execute(CONNECTIONS).fetchone()
        self.max_connections = max(self.max_connections, int(row[0]) if row else 0)
        self.max_rss = max(self.max_rss, self.proc.memory_info().rss)


async def setup_users(base_url: str) -> list[tuple[dict[str, str], str]]:
    users = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for i in range(USERS):
            email = f"sse-{i}-{time.time_ns()}@example.com"
            body = {"email": email, "password": "correct horse battery"}
            r = await client.post("/api/v1/auth/register", json=body)
            if r.status_code != 201:
                raise BenchError(f"register answered {r.status_code}: {r.text[:200]}")
            token = (await client.post("/api/v1/auth/login", json=body)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            with FIXTURE.open("rb") as fh:
                r = await client.post(
                    "/api/v1/audio", headers=headers, files={"file": ("a.wav", fh, "audio/wav")}
                )
            audio_id = r.json()["id"]
            r = await client.post(
                f"/api/v1/audio/{audio_id}/transcriptions", headers=headers, json={}
            )
            if r.status_code != 202:
                raise BenchError(f"transcribe answered {r.status_code}: {r.text[:200]}")
            users.append((headers, r.json()["job_id"]))
    return users


async def drive(
    dsn: str, jobs: list[str], rounds: int, sent: dict[tuple[str, float], float], sampler: Sampler
) -> None:
    """Play the worker: progress updates committed to every job, a round every 0.5 s."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("UPDATE job SET status = 'running' WHERE id = ANY(%s)", ([*jobs],))
        for n in range(1, rounds + 1):
            for job_id in jobs:
                sent[(job_id, float(n))] = time.perf_counter()
                await conn.execute("UPDATE job SET progress = %s WHERE id = %s", (n, job_id))
            sampler.sample()
            await asyncio.sleep(ROUND_EVERY_S)


async def sse_phase(
    base_url: str,
    dsn: str,
    users: list[tuple[dict[str, str], str]],
    args: argparse.Namespace,
    sampler: Sampler,
) -> dict[str, Any]:
    per_user = args.streams // USERS
    received: list[tuple[str, float, float]] = []  # job, progress, arrival
    opened = 0
    refused: list[int] = []
    limits = httpx.Limits(max_connections=args.streams + 50, max_keepalive_connections=0)
    timeout = httpx.Timeout(60, read=None)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:

        async def stream(path: str, headers: dict[str, str], is_open: asyncio.Event) -> None:
            nonlocal opened
            import json

            async with client.stream("GET", path, headers=headers) as r:
                is_open.set()
                if r.status_code != 200:
                    refused.append(r.status_code)
                    return
                opened += 1
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
                        received.append((event["id"], event["progress"], time.perf_counter()))
                        if event["progress"] >= args.rounds:
                            return

        plan = [
            (f"/api/v1/jobs/{job_id}/events" if i % 2 == 0 else "/api/v1/events", headers)
            for i in range(per_user)
            for headers, job_id in users
        ]
        tasks = []
        started = time.perf_counter()
        for first in range(0, len(plan), WAVE):
            events = [asyncio.Event() for _ in plan[first : first + WAVE]]
            for (path, headers), is_open in zip(plan[first : first + WAVE], events, strict=True):
                tasks.append(asyncio.create_task(stream(path, headers, is_open)))
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 120)
        open_s = time.perf_counter() - started
        if refused:
            raise BenchError(f"{len(refused)} streams refused: {sorted(set(refused))}")
        await asyncio.sleep(2)
        sampler.sample()
        rss_open = sampler.proc.memory_info().rss
        row = sampler.db.execute(CONNECTIONS).fetchone()
        connections_open = int(row[0]) if row else 0
        sent: dict[tuple[str, float], float] = {}
        await drive(dsn, [job for _, job in users], args.rounds, sent, sampler)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    latencies = [
        (arrival - sent[(job, progress)]) * 1000
        for job, progress, arrival in received
        if (job, progress) in sent
    ]
    expected = args.streams * args.rounds
    return {
        "streams": args.streams,
        "open_all_s": round(open_s, 2),
        "db_connections_with_streams_open": connections_open,
        "db_connections_peak": sampler.max_connections,
        "api_rss_mb_streams_open": round(rss_open / 2**20, 1),
        "api_rss_mb_peak": round(sampler.max_rss / 2**20, 1),
        "events_expected": expected,
        "events_delivered": len(latencies),
        "latency_ms_p50": round(pct(latencies, 0.5), 1),
        "latency_ms_p95": round(pct(latencies, 0.95), 1),
    }


async def polling_phase(
    base_url: str,
    dsn: str,
    users: list[tuple[dict[str, str], str]],
    args: argparse.Namespace,
    sampler: Sampler,
) -> dict[str, Any]:
    per_user = args.streams // USERS
    seen: list[tuple[str, float, float]] = []
    failures = 0
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=args.streams + 50)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def poll(headers: dict[str, str], job_id: str, offset: float) -> None:
            nonlocal failures
            last = None
            await asyncio.sleep(offset)
            while not stop.is_set():
                try:
                    r = await client.get(f"/api/v1/jobs/{job_id}", headers=headers)
                except httpx.TransportError:  # a keep-alive connection closed under load
                    failures += 1
                    await asyncio.sleep(POLL_EVERY_S)
                    continue
                if r.status_code != 200:
                    failures += 1
                else:
                    progress = r.json()["progress"]
                    if progress != last:
                        seen.append((job_id, progress, time.perf_counter()))
                        last = progress
                await asyncio.sleep(POLL_EVERY_S)

        tasks = [
            asyncio.create_task(poll(headers, job_id, i * POLL_EVERY_S / per_user))
            for headers, job_id in users
            for i in range(per_user)
        ]
        await asyncio.sleep(POLL_EVERY_S * 2)
        sent: dict[tuple[str, float], float] = {}
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("UPDATE job SET progress = 0")
        await drive(dsn, [job for _, job in users], args.rounds, sent, sampler)
        await asyncio.sleep(POLL_EVERY_S * 2)
        stop.set()
        await asyncio.gather(*tasks)
    latencies = [
        (arrival - sent[(job, progress)]) * 1000
        for job, progress, arrival in seen
        if (job, progress) in sent
    ]
    return {
        "clients": args.streams,
        "poll_every_s": POLL_EVERY_S,
        "db_connections_peak": sampler.max_connections,
        "api_rss_mb_peak": round(sampler.max_rss / 2**20, 1),
        "updates_seen": len(latencies),
        "failed_requests": failures,
        "latency_ms_p50": round(pct(latencies, 0.5), 1),
        "latency_ms_p95": round(pct(latencies, 0.95), 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from verbatim import embedded_db

    if args.streams < USERS or args.streams % USERS:
        raise BenchError(f"--streams must be a multiple of {USERS}")
    with tempfile.TemporaryDirectory(prefix="verbatim-bench-", dir=args.tmp_dir) as tmp:
        work = Path(tmp)
        pg = embedded_db.start(work / "pg")
        dsn = pg.uri
        try:
            port = free_port()
            env = child_env(
                VERBATIM_DATA_DIR=str(work / "data"),
                VERBATIM_DATABASE_URL=dsn,
                VERBATIM_RUN_WORKER_IN_API="false",
                VERBATIM_HOST="127.0.0.1",
                VERBATIM_PORT=str(port),
                VERBATIM_LOG_LEVEL="WARNING",
                VERBATIM_LOG_JSON="false",
            )
            server = start_process(
                "verbatim serve",
                [sys.executable, "-m", "verbatim.cli", "serve"],
                env=env,
                cwd=work,
                log_path=work / "serve.log",
                port=port,
            )
            try:
                wait_until_ok(server, "/health/live", 120)
                proc = psutil.Process(server.pid)
                with psycopg.connect(dsn, autocommit=True) as db:
                    users = asyncio.run(setup_users(server.base_url))
                    rss_idle = proc.memory_info().rss
                    sse = asyncio.run(
                        sse_phase(server.base_url, dsn, users, args, Sampler(db, proc))
                    )
                    print(f"  sse phase: {sse}", flush=True)
                    polling = asyncio.run(
                        polling_phase(server.base_url, dsn, users, args, Sampler(db, proc))
                    )
            except BaseException:
                kept = Path(tempfile.gettempdir()) / "verbatim-bench-sse-serve.log"
                kept.write_bytes((work / "serve.log").read_bytes())
                print(f"  the server's log is kept in {kept}", file=sys.stderr)
                raise
            finally:
                stop_process(server)
        finally:
            pg.stop()
    load = psutil.getloadavg()
    result = {
        "api_rss_mb_idle": round(rss_idle / 2**20, 1),
        "sse": sse,
        "polling": polling,
        "latency_p50_ratio_sse_over_polling": round(
            sse["latency_ms_p50"] / polling["latency_ms_p50"], 3
        ),
        "latency_p95_ratio_sse_over_polling": round(
            sse["latency_ms_p95"] / polling["latency_ms_p95"], 3
        ),
        "load_average": [round(x, 2) for x in load],
    }
    print_report(result)
    return result


def print_report(r: dict[str, Any]) -> None:
    s, p = r["sse"], r["polling"]
    print(f"  streams open: {s['streams']} (all open in {s['open_all_s']} s)")
    print(
        f"  database connections (server-wide, API + queue): "
        f"{s['db_connections_with_streams_open']} with the streams open, "
        f"peak {s['db_connections_peak']}; polling peak "
        f"{p['db_connections_peak']}"
    )
    print(
        f"  API memory: {r['api_rss_mb_idle']} MB idle, {s['api_rss_mb_streams_open']} MB with "
        f"the streams open, peak {s['api_rss_mb_peak']} MB"
    )
    print(f"  events delivered: {s['events_delivered']} of {s['events_expected']}")
    print(
        f"  latency commit -> client: SSE p50 {s['latency_ms_p50']} ms, p95 {s['latency_ms_p95']}"
        f" ms; polling every {p['poll_every_s']} s: p50 {p['latency_ms_p50']} ms, p95 "
        f"{p['latency_ms_p95']} ms ({p['failed_requests']} failed requests)"
    )
    print(
        f"  ratio SSE / polling: p50 {r['latency_p50_ratio_sse_over_polling']}, "
        f"p95 {r['latency_p95_ratio_sse_over_polling']}; load average {r['load_average']}"
    )
