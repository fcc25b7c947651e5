"""Run the benchmarks: `python -m bench.run [NAME|all]`, NAME one of:

- pipeline: end-to-end transcription through a real `verbatim serve` against bare
  faster-whisper on the same file (target: service / bare <= 1.10).
- ingest: upload throughput of `POST /api/v1/audio` against a bare ASGI app, and the API
  process's memory growth during a 1 GiB upload (targets: ratio >= 0.80, growth < 100 MB).
- event_loop: /health/live p99 idle and while 50 logins (8 at a time) and two transcriptions
  run (target: < 20 ms), and how a burst of wrong passwords is limited.
- storage: a --size-mb upload to S3 storage (a local moto server), presigned multipart and
  through the API: both throughputs and the API process's memory growth.
- index: search indexing (read, chunk, embed, write chunks) in chunks/s against bare
  embedding of the same chunk texts (target: >= 100 chunks/s per worker).
- concurrent: another user's GET /api/v1/audio while --stalled uploads (default 30) trickle
  their bodies: p50/p95 against the same requests with no stalled upload, and failures.
- scale: a large user's library (--sizes, default 10k then 100k recordings, seeded with COPY)
  and a small user's (100): p50/p95 of every list and read, deep pages, the 30,000-word
  transcript and its exports, 50 concurrent clients, EXPLAIN of every list query (fails on a
  sequential scan) and the plan-leak check on one connection (targets of issue 15).
- diarization: DER (0.25 s collar), speaker counts and word speaker accuracy on the dialogue
  fixtures and a 10+ min file; diarization time and memory against transcription on the
  pipeline's clip (targets: DER <= 5 %, stereo <= 2 %, time <= 10 %, memory <= 150 MB).
- search: GET /api/v1/search over --search-sizes chunks (default 100000; real text embedded
  with the real model, perturbed to size): index build time and size, recall@10 of the
  semantic leg against exact search, p50/p95 through HTTP (hybrid; semantic for users owning
  1% and 0.1%). Targets at 1M: recall@10 >= 0.95 at hybrid p95 < 100 ms.
- engines: faster-whisper's BatchedInferencePipeline (VAD chunking) against the sequential
  `WhisperModel.transcribe` with default settings on bench/data/speech_10min.ogg (tiny.en):
  throughput ratio and WER between them (target: >= 1.3x within 0.5 WER points).
- engine_parallel: the service's engine process pool on --parallel-clips (4) clips of
  --parallel-clip-s (30) s cut from the bench clip: one process with cpu_threads=2 taking them
  in turn against two processes with cpu_threads=1 each in parallel, and today's default (one
  process, cpu_threads=0) as the reference: throughput (audio s per wall s), ratios, load
  average before and after each run.
- webui: the web UI in Chromium: the 30,000-word recording page's time to interactive against
  the same words as plain text, frame times and DOM mutations while playing, and the library
  page's weight for 10,000 recordings against one API JSON page (targets: < 2 s, < 200 KB).
- topics: the topic scoring query over --transcriptions (2000) x --chunks (20) chunks of one
  user, against one GROUP BY reading every distance once.
- reconcile: corpus WER of three local engines (--reconcile-engines, default tiny.en, base and
  base decoded greedily) on 24 clips with references (bench/data/reconcile), and of their
  reconciled consensus and each pair's (target: >= 10 % relative below the best engine);
  reconciliation time per clip; how well the low-agreement spans locate the consensus errors.
  Needs the `bench` extra (jiwer, the base model's PyPI parts).
- sse: --streams (500) server-sent event streams on one API process while a worker's progress
  updates land: database connections, memory, delivered events and latency p50/p95 from commit
  to client, against clients polling GET /api/v1/jobs/{id} once a second.
- webhooks: --messages (300) signed webhook messages through the queue and worker to a local
  receiver verifying signatures: throughput and latency, against the same POSTs sent directly.

Figures are printed, and written to bench/results/latest.json (git-ignored): each benchmark
that ran replaces its own section there, the others are kept from earlier runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    concurrent_uploads,
    diarization,
    engine_parallel,
    engines,
    event_loop,
    index,
    ingest,
    pipeline,
    reconcile,
    scale,
    search,
    sse,
    storage,
    topics,
    webhooks,
    webui,
)
from bench.common import REPO_ROOT, BenchError

RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
BENCHMARKS = (
    "pipeline",
    "ingest",
    "storage",
    "event_loop",
    "concurrent",
    "scale",
    "index",
    "topics",
    "diarization",
    "search",
    "reconcile",
    "sse",
    "webhooks",
    "engines",
    "engine_parallel",
    "webui",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("which", nargs="?", choices=[*BENCHMARKS, "all"], default="all")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure N times, alternating reference and service; report medians",
    )
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=None,
        help="where temporary data directories and files go (default: the system's)",
    )
    pipeline.add_arguments(parser)
    ingest.add_arguments(parser)
    concurrent_uploads.add_arguments(parser)
    scale.add_arguments(parser)
    index.add_arguments(parser)
    diarization.add_arguments(parser)
    search.add_arguments(parser)
    topics.add_arguments(parser)
    reconcile.add_arguments(parser)
    sse.add_arguments(parser)
    webhooks.add_arguments(parser)
    engines.add_arguments(parser)
    engine_parallel.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not 1 <= args.size_mb <= 4000:
        parser.error("--size-mb must be between 1 and 4000 (a WAV stays under 4 GiB)")
    return args


def write_results(sections: dict[str, Any]) -> None:
    """Merge `sections` into bench/results/latest.json."""
    results: dict[str, Any] = {}
    if RESULTS.exists():
        try:
            results = json.loads(RESULTS.read_text())
        except json.JSONDecodeError:
            results = {}
    results.update(sections)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")


def host_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "python": platform.python_version(),
    }


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds through the finally blocks, which stop every server started.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    chosen = BENCHMARKS if args.which == "all" else (args.which,)
    runners = {
        "pipeline": pipeline.run,
        "ingest": ingest.run,
        "storage": storage.run,
        "event_loop": event_loop.run,
        "concurrent": concurrent_uploads.run,
        "scale": scale.run,
        "index": index.run,
        "diarization": diarization.run,
        "search": search.run,
        "topics": topics.run,
        "reconcile": reconcile.run,
        "sse": sse.run,
        "webhooks": webhooks.run,
        "engines": engines.run,
        "engine_parallel": engine_parallel.run,
        "webui": webui.run,
    }
    try:
        if "pipeline" in chosen:
            pipeline.input_file(args)  # fail before anything long starts
        sections: dict[str, Any] = {}
        for name in chosen:
            print(f"\n### {name}", flush=True)
            result = runners[name](args)
            sections[name] = {
                "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "host": host_info(),
                "repeat": args.repeat,
                **result,
            }
            write_results({name: sections[name]})
    except BenchError as exc:
        print(f"\nbench: {exc}", file=sys.stderr)
        return 1
    print(f"\nresults written to {RESULTS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
