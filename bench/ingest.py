"""Ingest benchmark: upload throughput and memory of `POST /api/v1/audio` for a 1 GiB file.

A valid WAV (16-bit mono 48 kHz, low-amplitude noise from a fixed seed, so the service's probe
accepts it) of --size-mb MiB is generated once, in chunks, into a temporary directory. It is
uploaded, streamed from disk by the same httpx client code, to:

- the service: a real `verbatim serve` subprocess (fresh data directory, embedded PostgreSQL),
  as multipart/form-data, timed until the 201 answer (streamed to disk, hashed, probed,
  recorded and moved into storage);
- the reference: bench.ingest_reference, a bare ASGI app under uvicorn that writes the raw body
  to a file on the same disk while hashing it.

Reported: both throughputs and their ratio (target service / reference >= 0.80), and the peak
RSS growth of the service's API process during the upload (sampled every 50 ms in a thread,
peak minus the RSS just before; target < 100 MB): the upload must stream, not buffer. Both
answers' SHA-256 must equal the file's. Before each upload the page cache is flushed (sync), so
writeback left over from the previous upload does not land in the next one's time. Both
servers are up for the whole run, the one not measured idle. With --repeat N the two
alternate (a new user per service upload, so it is never a duplicate) and medians are
reported. Everything generated is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from bench.common import (
    MIB,
    REPO_ROOT,
    ApiClient,
    BenchError,
    ServerProcess,
    child_env,
    expect,
    free_port,
    median,
    multipart_body,
    raw_body,
    start_process,
    stop_process,
    verbatim_server,
    wait_until_ok,
)

MB = 1_000_000  # rates and memory are reported in MB = 10^6 bytes, file sizes in MiB
TARGET_RATIO = 0.80
TARGET_RSS_GROWTH_MB = 100.0
RSS_SAMPLE_S = 0.05
SEED = 20240601
NOISE_AMPLITUDE = 256  # of 32767: quiet noise
WAV_HEADER_BYTES = 44
SAMPLE_RATE = 48_000
GENERATE_CHUNK = 4 * MIB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ingest")
    group.add_argument(
        "--size-mb",
        type=int,
        default=1024,
        help="size of the uploaded WAV in MiB, for ingest and storage "
        "(default 1024 = 1 GiB; e.g. 64 for a quick run)",
    )


# --- the file -------------------------------------------------------------------------------


def wav_header(
    data_bytes: int, rate: int = SAMPLE_RATE, channels: int = 1, bits: int = 16
) -> bytes:
    """The 44-byte RIFF/WAVE header of a PCM file with `data_bytes` of samples."""
    block_align = channels * bits // 8
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        rate,
        rate * block_align,
        block_align,
        bits,
        b"data",
        data_bytes,
    )


def make_noise_wav(path: Path, total_bytes: int, seed: int = SEED) -> str:
    """Write a WAV of exactly `total_bytes` (rounded down to whole samples) of seeded noise,
    GENERATE_CHUNK at a time so it is never in memory; returns its SHA-256."""
    data_bytes = (total_bytes - WAV_HEADER_BYTES) // 2 * 2
    if data_bytes <= 0 or 36 + data_bytes >= 2**32:
        raise BenchError(f"a WAV cannot be {total_bytes} bytes")
    rng = np.random.default_rng(seed)
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        header = wav_header(data_bytes)
        digest.update(header)
        out.write(header)
        remaining = data_bytes
        while remaining:
            count = min(GENERATE_CHUNK, remaining)
            samples = rng.integers(
                -NOISE_AMPLITUDE, NOISE_AMPLITUDE, size=count // 2, dtype=np.int16, endpoint=True
            )
            chunk = samples.astype("<i2", copy=False).tobytes()
            digest.update(chunk)
            out.write(chunk)
            remaining -= count
    return digest.hexdigest()


# --- measuring one upload -------------------------------------------------------------------


class RssSampler:
    """One process's RSS, sampled every RSS_SAMPLE_S in a thread while the block runs.

    `growth` is the peak minus the RSS read on entry, i.e. what the upload made the process
    hold at most. Only that process is sampled, not its children.
    """

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    def _sample(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(RSS_SAMPLE_S)


def timed_upload(send: Callable[[], httpx.Response], server_pid: int) -> dict[str, Any]:
    """Flush dirty pages, then time `send()` while sampling the server's RSS."""
    os.sync()
    with RssSampler(server_pid) as rss:
        started = time.perf_counter()
        response = send()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_growth_bytes": rss.growth, "response": response}


def upload_to_service(server: ServerProcess, source: Path, sha256: str) -> dict[str, Any]:
    """One multipart upload to POST /api/v1/audio as a new user; checked, then deleted."""
    size = source.stat().st_size
    with ApiClient(server.base_url) as client:
        measured = timed_upload(lambda: client.upload(multipart_body(source)), server.pid)
        audio = expect(measured.pop("response"), 201)
        check_digest("the service", audio["sha256"], audio["size_bytes"], sha256, size)
        client.http.delete(f"/api/v1/audio/{audio['id']}")  # frees the disk; not timed
    return _rates(measured, size)


def upload_to_reference(server: ServerProcess, source: Path, sha256: str) -> dict[str, Any]:
    """One raw-body upload to the bare ASGI app; checked, then its copy deleted."""
    size = source.stat().st_size
    with httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(900.0)) as client:

        def send() -> httpx.Response:
            body = raw_body(source)
            return client.post("/", content=body.chunks, headers=body.headers)

        measured = timed_upload(send, server.pid)
        answer = expect(measured.pop("response"), 200)
    check_digest("the reference", answer["sha256"], answer["size"], sha256, size)
    Path(answer["path"]).unlink(missing_ok=True)
    return _rates(measured, size)


def check_digest(who: str, got_sha: str, got_size: int, sha256: str, size: int) -> None:
    if got_sha != sha256 or got_size != size:
        raise BenchError(
            f"{who} stored something else: sha256 {got_sha} ({got_size} bytes), "
            f"expected {sha256} ({size} bytes)"
        )


def _rates(measured: dict[str, Any], size: int) -> dict[str, Any]:
    return {
        **measured,
        "mb_per_s": size / MB / measured["seconds"],
        "rss_growth_mb": measured["rss_growth_bytes"] / MB,
        "sha256_ok": True,
    }


@contextlib.contextmanager
def reference_server(work_dir: Path) -> Iterator[ServerProcess]:
    """bench.ingest_reference under uvicorn on a free loopback port; always stopped after."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_process(
        "reference uvicorn",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.ingest_reference:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=child_env(BENCH_UPLOAD_DIR=str(work_dir / "uploads")),
        cwd=REPO_ROOT,
        log_path=work_dir / "reference.log",
        port=port,
    )
    try:
        server.ready_s = wait_until_ok(server, "/", 60.0)
        yield server
    finally:
        stop_process(server)


# --- one benchmark run ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the file, upload it to the reference and the service `args.repeat` times
    alternating, print and return the summary; all generated files are removed after."""
    size = args.size_mb * MIB
    work = Path(tempfile.mkdtemp(prefix="verbatim-bench-ingest-", dir=args.tmp_dir))
    try:
        source = work / "source" / f"noise-{args.size_mb}MiB.wav"
        print(f"generating a {args.size_mb} MiB WAV in {work} ...", flush=True)
        started = time.perf_counter()
        sha256 = make_noise_wav(source, size)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
        env = {"VERBATIM_MAX_UPLOAD_BYTES": str(size + 64 * MIB)}
        references: list[dict[str, Any]] = []
        services: list[dict[str, Any]] = []
        with (
            verbatim_server(work / "service", env=env) as service,
            reference_server(work / "reference") as reference,
        ):
            for index in range(args.repeat):
                label = f"[{index + 1}/{args.repeat}]"
                references.append(upload_to_reference(reference, source, sha256))
                print(f"{label} reference {references[-1]['mb_per_s']:8.1f} MB/s", flush=True)
                services.append(upload_to_service(service, source, sha256))
                print(f"{label} service   {services[-1]['mb_per_s']:8.1f} MB/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize(size, sha256, references, services)
    print_report(summary)
    return summary


def summarize(
    size: int, sha256: str, references: list[dict[str, Any]], services: list[dict[str, Any]]
) -> dict[str, Any]:
    reference_rate = median(r["mb_per_s"] for r in references)
    service_rate = median(s["mb_per_s"] for s in services)
    ratio = service_rate / reference_rate
    growth = max(s["rss_growth_mb"] for s in services)
    return {
        "file_bytes": size,
        "file_sha256": sha256,
        "wav": f"PCM 16-bit mono {SAMPLE_RATE} Hz, noise amplitude {NOISE_AMPLITUDE}, seed {SEED}",
        "runs": len(services),
        "reference_mb_per_s": reference_rate,
        "service_mb_per_s": service_rate,
        "ratio_service_over_reference": ratio,
        "target_ratio_min": TARGET_RATIO,
        "meets_ratio_target": ratio >= TARGET_RATIO,
        "service_rss_growth_mb": growth,
        "reference_rss_growth_mb": max(r["rss_growth_mb"] for r in references),
        "target_rss_growth_mb_max": TARGET_RSS_GROWTH_MB,
        "meets_rss_target": growth < TARGET_RSS_GROWTH_MB,
        "sha256_verified": True,
        "reference_runs": references,
        "service_runs": services,
    }


def print_report(s: dict[str, Any]) -> None:
    runs = f"median of {s['runs']} runs" if s["runs"] > 1 else "1 run"
    ratio_verdict = "PASS" if s["meets_ratio_target"] else "MISS"
    rss_verdict = "PASS" if s["meets_rss_target"] else "MISS"
    mib = s["file_bytes"] / MIB
    seconds = {k: median(r["seconds"] for r in s[k]) for k in ("reference_runs", "service_runs")}
    print()
    print(
        f"== ingest: {mib:.0f} MiB WAV ({s['file_bytes'] / MB:.1f} MB), {runs}; MB = 10^6 bytes =="
    )
    print(
        f"  reference, bare ASGI raw body -> file + sha256  {seconds['reference_runs']:7.2f} s"
        f"  {s['reference_mb_per_s']:8.1f} MB/s   (its RSS growth "
        f"{s['reference_rss_growth_mb']:.1f} MB)"
    )
    print(
        f"  service, POST /api/v1/audio multipart           {seconds['service_runs']:7.2f} s"
        f"  {s['service_mb_per_s']:8.1f} MB/s"
    )
    ratio = s["ratio_service_over_reference"]
    print(
        f"  ratio service / reference                       {ratio:7.3f}"
        f"              target >= {s['target_ratio_min']:.2f}   {ratio_verdict}"
    )
    print(
        f"  service API process peak RSS growth             {s['service_rss_growth_mb']:7.1f} MB"
        f"            target < {s['target_rss_growth_mb_max']:.0f} MB   {rss_verdict}"
    )
    print("  sha256 of both stored copies = the file's: yes")
