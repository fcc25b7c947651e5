"""Webhook delivery benchmark: --messages signed messages through the real queue and worker.

A real `verbatim serve` (embedded PostgreSQL, the worker inside, default concurrency of 4 for
non-transcription jobs) and a receiver on 127.0.0.2 (allow-listed) that verifies every
signature with `standardwebhooks` and records when each message arrived. The benchmark asks
for --messages `webhook.test` messages (POST /api/v1/webhooks/{id}/test) from 4 client threads,
as fast as the API takes them.

Reported: messages delivered and verified, the rate the API created them and the rate they
arrived (from the first request to the last arrival: when delivery keeps up, the two are equal
and creation is the bound), latency from the API's 202 to the receiver p50/p95. The reference,
in the same run: the same number of signed POSTs sent straight to the receiver by 4 concurrent httpx
clients (what the delivery costs without the queue, the database and the guard).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
from standardwebhooks import Webhook

from bench.common import ApiClient, BenchError, expect, verbatim_server

CONCURRENCY = 4  # the worker's default for the default queue


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("webhooks")
    group.add_argument("--messages", type=int, default=300, help="messages (default 300)")


class Receiver:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.arrivals: dict[str, float] = {}
        self.bad = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    assert receiver.secret is not None
                    Webhook(receiver.secret).verify(body, headers)
                    with receiver.lock:
                        receiver.arrivals.setdefault(headers["webhook-id"], time.perf_counter())
                except Exception:
                    with receiver.lock:
                        receiver.bad += 1
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.2:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def reference(url: str, secret: str, n: int) -> float:
    """Seconds for n signed POSTs, CONCURRENCY at a time, straight to the receiver."""
    from datetime import UTC, datetime

    from verbatim.webhooks.sender import body_of, signed_headers

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def one(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = body_of({"type": "webhook.test", "data": {"i": i}})
            headers = signed_headers(secret, f"msg_ref{i}", body, datetime.now(UTC))
            r = await client.post(url, content=body.encode(), headers=headers)
            if r.status_code != 204:
                raise BenchError(f"the receiver answered {r.status_code}")

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(one(client) for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.messages
    if n < 1:
        raise BenchError("--messages must be at least 1")
    receiver = Receiver()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="verbatim-bench-", dir=args.tmp_dir) as tmp,
            verbatim_server(
                Path(tmp), env={"VERBATIM_WEBHOOK_ALLOW_NETWORKS": "127.0.0.2/32"}
            ) as server,
            ApiClient(server.base_url) as api,
        ):
            hook = api.post_json("/api/v1/webhooks", {"url": receiver.url}, 201)
            receiver.secret = hook["secret"]
            sent: dict[str, float] = {}
            counter = iter(range(n))
            lock = threading.Lock()

            def create() -> None:
                while True:
                    with lock:
                        if next(counter, None) is None:
                            return
                    d = expect(api.http.post(f"/api/v1/webhooks/{hook['id']}/test"), 202)
                    sent[d["webhook_id"]] = time.perf_counter()

            started = time.perf_counter()
            threads = [threading.Thread(target=create) for _ in range(CONCURRENCY)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            created_s = max(sent.values()) - started
            deadline = time.monotonic() + 600
            while len(receiver.arrivals) < n:
                if time.monotonic() > deadline:
                    raise BenchError(f"only {len(receiver.arrivals)} of {n} arrived in 600 s")
                time.sleep(0.2)
            delivered = len(receiver.arrivals)
            last = max(receiver.arrivals.values())
            service_s = last - started
            latencies = [
                (receiver.arrivals[k] - t) * 1000 for k, t in sent.items() if k in receiver.arrivals
            ]
            page = api.get_json(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=200")
            attempts = [d["attempts"] for d in page["items"]]
            reference_s = asyncio.run(reference(receiver.url, hook["secret"], n))
    finally:
        receiver.close()
    result = {
        "messages": n,
        "delivered": delivered,
        "created_per_s": round(n / created_s, 1),
        "bad_signatures": receiver.bad,
        "retried_in_sample": sum(1 for a in attempts if a > 1),
        "service_messages_per_s": round(n / service_s, 1),
        "reference_messages_per_s": round(n / reference_s, 1),
        "ratio_service_over_reference": round(reference_s / service_s, 3),
        "latency_ms_p50": round(pct(latencies, 0.5), 1),
        "latency_ms_p95": round(pct(latencies, 0.95), 1),
        "load_average": [round(x, 2) for x in psutil.getloadavg()],
    }
    print(
        f"  {result['delivered']} of {n} delivered, {result['bad_signatures']} bad signatures; "
        f"created {result['created_per_s']}/s through the API, delivered "
        f"{result['service_messages_per_s']} messages/s through the queue against "
        f"{result['reference_messages_per_s']}/s sent directly (ratio "
        f"{result['ratio_service_over_reference']}); latency 202 -> receiver p50 "
        f"{result['latency_ms_p50']} ms, p95 {result['latency_ms_p95']} ms; "
        f"load average {result['load_average']}"
    )
    return result
