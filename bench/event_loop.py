"""Event-loop benchmark: does the API stay responsive while logins and transcriptions run?

One fresh `verbatim serve` (embedded PostgreSQL, worker and engine process inside), then, in the
same run:

- idle: GET /health/live, one request at a time, IDLE_SAMPLES times: the reference p50/p99;
- load: two transcriptions of bench/data/speech_10min.ogg are requested (the worker runs one,
  the other waits), and once the first is running, LOGINS logins run LOGIN_CONCURRENCY at a time
  (over five accounts, some with a wrong password) while GET /health/live is sampled one request
  at a time, every SAMPLE_INTERVAL_S, until the last login answered. The target is
  /health/live p99 < 20 ms under load;
- limits: WRONG_BURST wrong-password logins against one account, LOGIN_CONCURRENCY at a time,
  with the default per-account limit: how many got 429 (before the fix: none).

The server runs with VERBATIM_LOGIN_RATE_PER_ADDRESS raised (every request comes from
127.0.0.1): all LOGINS logins then really hash a password, the worst case for the event loop.
The per-account limit keeps its default (10 failures per 15 min). The transcriptions are
cancelled at the end; their duration is not what is measured.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.common import ApiClient, BenchError, expect, multipart_body, verbatim_server
from bench.pipeline import input_file

TARGET_P99_MS = 20.0
IDLE_SAMPLES = 400
SAMPLE_INTERVAL_S = 0.01
LOGINS = 50
LOGIN_CONCURRENCY = 8
ACCOUNTS = 5
WRONG_EVERY = 4  # every 4th login has a wrong password (13 of 50, at most 3 per account)
WRONG_BURST = 60


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 400 samples is the 396th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "samples": len(samples_ms),
        "p50_ms": statistics.median(samples_ms),
        "p99_ms": percentile(samples_ms, 99),
        "max_ms": max(samples_ms),
    }


def sample_live(base_url: str, stop: threading.Event, limit: int | None = None) -> list[float]:
    """GET /health/live one at a time until `stop` is set (or `limit` samples): latencies in ms."""
    samples: list[float] = []
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        client.get("/health/live")  # open the connection first: keep-alive, as a prober does
        while not stop.is_set() and (limit is None or len(samples) < limit):
            started = time.perf_counter()
            response = client.get("/health/live")
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise BenchError(f"/health/live answered {response.status_code}")
            time.sleep(SAMPLE_INTERVAL_S)
    return samples


def make_accounts(base_url: str, count: int) -> list[tuple[str, str]]:
    accounts = []
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        for _ in range(count):
            email, password = f"bench-{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
            body = {"email": email, "password": password}
            expect(client.post("/api/v1/auth/register", json=body), 201)
            accounts.append((email, password))
    return accounts


def run_logins(
    base_url: str, attempts: list[tuple[str, str]]
) -> tuple[dict[int, int], list[float]]:
    """POST /auth/login for each (email, password), LOGIN_CONCURRENCY at a time: status counts
    and latencies (ms)."""
    local = threading.local()

    def one(attempt: tuple[str, str]) -> tuple[int, float]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base_url, timeout=120.0)
        started = time.perf_counter()
        response = client.post(
            "/api/v1/auth/login", json={"email": attempt[0], "password": attempt[1]}
        )
        return response.status_code, (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(LOGIN_CONCURRENCY) as pool:
        results = list(pool.map(one, attempts))
    counts: dict[int, int] = {}
    for status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    return counts, [ms for _, ms in results]


def wait_running(client: ApiClient, job_id: str, timeout_s: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        job = client.get_json(f"/api/v1/jobs/{job_id}")
        if job["status"] == "running":
            return
        if job["status"] in ("completed", "failed", "cancelled"):
            raise BenchError(f"the transcription ended ({job['status']}) before the load started")
        time.sleep(0.1)
    raise BenchError(f"the transcription was not running after {timeout_s:.0f} s")


def measure(base_url: str, audio: Path) -> dict[str, Any]:
    print("  idle: /health/live, one request at a time ...", flush=True)
    idle = summary(sample_live(base_url, threading.Event(), limit=IDLE_SAMPLES))
    print(f"    p50 {idle['p50_ms']:.2f} ms   p99 {idle['p99_ms']:.2f} ms", flush=True)

    accounts = make_accounts(base_url, ACCOUNTS)
    with ApiClient(base_url) as client:
        uploaded = expect(client.upload(multipart_body(audio)), 201)
        jobs = [
            client.post_json(
                f"/api/v1/audio/{uploaded['id']}/transcriptions", {"model": "tiny.en"}, 202
            )["job_id"]
            for _ in range(2)
        ]
        wait_running(client, jobs[0])

        attempts = []
        for i in range(LOGINS):
            email, password = accounts[i % ACCOUNTS]
            attempts.append((email, "wrong password" if i % WRONG_EVERY == 0 else password))
        print(
            f"  load: {LOGINS} logins, {LOGIN_CONCURRENCY} at a time, two transcriptions "
            "queued (one running) ...",
            flush=True,
        )
        stop = threading.Event()
        sampled: list[float] = []
        sampler = threading.Thread(
            target=lambda: sampled.extend(sample_live(base_url, stop)), daemon=True
        )
        sampler.start()
        started = time.perf_counter()
        login_counts, login_ms = run_logins(base_url, attempts)
        load_s = time.perf_counter() - started
        stop.set()
        sampler.join()
        states = [client.get_json(f"/api/v1/jobs/{job}")["status"] for job in jobs]
        load = summary(sampled)
        print(
            f"    p50 {load['p50_ms']:.2f} ms   p99 {load['p99_ms']:.2f} ms   "
            f"logins {login_counts} in {load_s:.2f} s   jobs after: {states}",
            flush=True,
        )

        print(
            f"  limits: {WRONG_BURST} wrong passwords for one account, "
            f"{LOGIN_CONCURRENCY} at a time ...",
            flush=True,
        )
        victim = accounts[0][0]
        burst_counts, _ = run_logins(base_url, [(victim, "guess")] * WRONG_BURST)
        print(f"    {burst_counts}", flush=True)
        for job in jobs:
            client.http.post(f"/api/v1/jobs/{job}/cancel")

    return {
        "idle": idle,
        "load": {
            **load,
            "logins": LOGINS,
            "login_concurrency": LOGIN_CONCURRENCY,
            "login_statuses": login_counts,
            "login_p50_ms": statistics.median(login_ms),
            "login_max_ms": max(login_ms),
            "load_s": load_s,
            "transcription_states_after": states,
        },
        "wrong_password_burst": {"attempts": WRONG_BURST, "statuses": burst_counts},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    audio = input_file(args)  # bench/data/speech_10min.ogg unless --file
    env = {"VERBATIM_LOGIN_RATE_PER_ADDRESS": "100000"}
    with (
        tempfile.TemporaryDirectory(prefix="verbatim-bench-loop-", dir=args.tmp_dir) as tmp,
        verbatim_server(Path(tmp), env=env) as server,
    ):
        result = measure(server.base_url, audio)
    p99 = result["load"]["p99_ms"]
    result.update(
        target_p99_ms=TARGET_P99_MS,
        meets_target=p99 < TARGET_P99_MS,
        ratio_load_over_idle_p99=p99 / result["idle"]["p99_ms"],
    )
    verdict = "PASS" if result["meets_target"] else "MISS"
    print()
    print("== event loop: /health/live latency ==")
    print(
        f"  idle                 p50 {result['idle']['p50_ms']:7.2f} ms   "
        f"p99 {result['idle']['p99_ms']:7.2f} ms"
    )
    print(
        f"  under load           p50 {result['load']['p50_ms']:7.2f} ms   "
        f"p99 {p99:7.2f} ms   target < {TARGET_P99_MS:.0f} ms   {verdict}"
    )
    burst = result["wrong_password_burst"]["statuses"]
    print(f"  {WRONG_BURST} wrong passwords, one account: {burst}")
    return result
