"""Concurrent-uploads benchmark: another user's `GET /api/v1/audio` while N uploads stall.

A real `verbatim serve` subprocess (fresh data directory, embedded PostgreSQL, default
settings: a pool of 10 connections plus 10 overflow). One user (the "attacker") opens N raw
sockets (default 30, more than the pool holds) and sends on each the headers of a multipart
`POST /api/v1/audio` announcing a 100 MB body and its first bytes, then trickles one byte every
few seconds, slower than any upload but faster than the body idle timeout: the uploads stay
open for the whole measurement. Another user (the "victim") meanwhile lists their audio.

Reported: p50/p95 of the victim's list request with no stalled upload (the reference,
measured first in the same run) and during the stall, their ratio, and how many requests
failed (any status but 200, or no answer within the client timeout). Before the fix each
stalled upload held a pooled connection "idle in transaction": with 30 of them every other
request waited 30 s for a connection and got a 500.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import ApiClient, BenchError, ServerProcess, verbatim_server

ANNOUNCED_BYTES = 100 * 1_000_000
TRICKLE_EVERY_S = 5.0
LIST_REQUESTS = 40
LIST_TIMEOUT_S = 40.0  # above the pool timeout (10 s; 30 s before the fix)
TARGET_RATIO = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("concurrent")
    group.add_argument("--stalled", type=int, default=30, help="uploads kept stalled (default 30)")


class StalledUploads:
    """N raw sockets, each an upload that sent its headers and a little body, then trickles."""

    def __init__(self, base_url: str, token: str, count: int) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.token = token
        self.count = count
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> StalledUploads:
        for _ in range(self.count):
            boundary = f"stall-{uuid.uuid4().hex}"
            preamble = (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="file"; filename="slow.wav"\r\n'
                "Content-Type: audio/wav\r\n\r\n"
            ).encode()
            head = (
                "POST /api/v1/audio HTTP/1.1\r\n"
                f"Host: {self.address[0]}:{self.address[1]}\r\n"
                f"Authorization: Bearer {self.token}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {ANNOUNCED_BYTES}\r\n\r\n"
            ).encode()
            sock = socket.create_connection(self.address, timeout=10)
            sock.sendall(head + preamble + b"RIFF" + b"\0" * 1000)
            self.sockets.append(sock)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(TRICKLE_EVERY_S):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"\0")

    def still_open(self) -> int:
        """Sockets the server has not answered or closed (a peek that does not block)."""
        alive = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                sock.recv(1, socket.MSG_PEEK)  # an answer, or b"" once closed
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
            finally:
                sock.setblocking(True)
        return alive

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def time_lists(client: ApiClient, count: int) -> dict[str, Any]:
    """`count` sequential list requests: latencies (ms) of all, and the failures."""
    latencies: list[float] = []
    failures: list[str] = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            response = client.http.get("/api/v1/audio", timeout=LIST_TIMEOUT_S)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:120]}")
        except httpx.TimeoutException:
            failures.append("timeout")
        latencies.append((time.perf_counter() - started) * 1000)
    return {"ms": latencies, "failures": failures}


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1])


def measure(server: ServerProcess, stalled: int) -> dict[str, Any]:
    with ApiClient(server.base_url) as attacker, ApiClient(server.base_url) as victim:
        victim.get_json("/api/v1/audio")  # warm: connections, caches
        reference = time_lists(victim, LIST_REQUESTS)
        token = attacker.http.headers["Authorization"].removeprefix("Bearer ")
        with StalledUploads(server.base_url, token, stalled) as uploads:
            time.sleep(2.0)  # every upload authenticated and waiting for its body
            during = time_lists(victim, LIST_REQUESTS)
            open_after = uploads.still_open()
    return {"reference": reference, "stalled": during, "uploads_still_open": open_after}


def summarize(measured: dict[str, Any], stalled: int) -> dict[str, Any]:
    ref, during = measured["reference"], measured["stalled"]
    out: dict[str, Any] = {
        "stalled_uploads": stalled,
        "uploads_still_open": measured["uploads_still_open"],
        "requests": LIST_REQUESTS,
    }
    for name, data in (("reference", ref), ("stalled", during)):
        out[name] = {
            "p50_ms": round(percentile(data["ms"], 50), 1),
            "p95_ms": round(percentile(data["ms"], 95), 1),
            "failures": len(data["failures"]),
            "first_failures": data["failures"][:3],
        }
    out["ratio_p50"] = round(out["stalled"]["p50_ms"] / out["reference"]["p50_ms"], 2)
    out["ratio_p95"] = round(out["stalled"]["p95_ms"] / out["reference"]["p95_ms"], 2)
    out["target"] = f"no failures, ratio_p95 <= {TARGET_RATIO}"
    out["met"] = out["stalled"]["failures"] == 0 and out["ratio_p95"] <= TARGET_RATIO
    return out


def print_report(s: dict[str, Any]) -> None:
    still = s["uploads_still_open"]
    print(f"  {s['stalled_uploads']} uploads stalled ({still} still open at the end)")
    for name in ("reference", "stalled"):
        r = s[name]
        print(
            f"  {name:9s} GET /api/v1/audio x{s['requests']}: p50 {r['p50_ms']:.1f} ms, "
            f"p95 {r['p95_ms']:.1f} ms, failures {r['failures']} {r['first_failures'] or ''}"
        )
    print(f"  ratio stalled/reference: p50 {s['ratio_p50']}x, p95 {s['ratio_p95']}x")
    print(f"  target: {s['target']}: {'met' if s['met'] else 'NOT met'}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    stalled = args.stalled
    if stalled < 1:
        raise BenchError("--stalled must be at least 1")
    with (
        tempfile.TemporaryDirectory(prefix="verbatim-bench-", dir=args.tmp_dir) as tmp,
        verbatim_server(Path(tmp)) as server,
    ):
        measured = measure(server, stalled)
    summary = summarize(measured, stalled)
    print_report(summary)
    return summary
