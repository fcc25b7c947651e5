"""Pipeline benchmark: what the service adds to the time faster-whisper alone needs.

For one speech file (by default bench/data/speech_10min.ogg, at least ten minutes of speech):

- reference: bare `WhisperModel(...).transcribe(...)` with the service's model and settings, in a
  fresh Python subprocess (bench.whisper_reference), timing transcription plus consuming every
  segment; model loading is timed and reported apart, as the service loads its model at start-up.
- service: a real `verbatim serve` subprocess with a fresh data directory (embedded PostgreSQL,
  in-process worker), timed end to end as a client sees it: upload, request the transcription,
  poll the job every 0.25 s until it completed.

The two never share the CPU: each run starts the reference, waits for it to finish, then starts
a fresh server, measures, and stops it. With --repeat N the pairs alternate and medians are
reported. The target is service / reference <= 1.10. The service's time is also broken down
with what the API reports (job timestamps, processing_time_s).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    ApiClient,
    BenchError,
    child_env,
    expect,
    median,
    multipart_body,
    verbatim_server,
)

DEFAULT_FILE = REPO_ROOT / "bench" / "data" / "speech_10min.ogg"
MAKE_FIXTURE = "python scripts/make_fixtures.py --bench"
MIN_DEFAULT_DURATION_S = 600.0
TARGET_RATIO = 1.10
POLL_INTERVAL_S = 0.25
# The API's defaults, sent explicitly; the reference gets the same keyword arguments.
TRANSCRIBE_OPTIONS: dict[str, Any] = {
    "language": None,
    "beam_size": 5,
    "word_timestamps": True,
    "vad_filter": False,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pipeline")
    group.add_argument(
        "--file",
        type=Path,
        default=None,
        help=f"speech to transcribe (default: {DEFAULT_FILE.relative_to(REPO_ROOT)})",
    )
    group.add_argument("--model", default="tiny.en", help="model name, as the API takes it")


def input_file(args: argparse.Namespace) -> Path:
    """The file to transcribe; a BenchError saying how to make the default one if it is missing."""
    path: Path = args.file or DEFAULT_FILE
    if not path.is_file():
        if args.file is None:
            raise BenchError(
                f"{DEFAULT_FILE.relative_to(REPO_ROOT)} does not exist yet. Make it with\n"
                f"    {MAKE_FIXTURE}\n"
                "or pass --file PATH (any audio the service accepts)."
            )
        raise BenchError(f"--file {path}: no such file")
    return path.resolve()


# --- the reference --------------------------------------------------------------------------


def run_reference(audio: Path, model: str) -> dict[str, Any]:
    """Bare faster-whisper on `audio` in a fresh subprocess; its timings (see whisper_reference)."""
    from verbatim.engines.models import resolve_model

    model_path = resolve_model(model, None).path
    argv = [
        sys.executable,
        "-m",
        "bench.whisper_reference",
        "--file",
        str(audio),
        "--model-path",
        str(model_path),
        "--options",
        json.dumps(TRANSCRIBE_OPTIONS),
    ]
    done = subprocess.run(argv, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"the reference failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# --- the service ----------------------------------------------------------------------------


def run_service(audio: Path, model: str, work_root: Path | None) -> dict[str, Any]:
    """A fresh `verbatim serve`, one transcription timed end to end, the server stopped after."""
    with tempfile.TemporaryDirectory(prefix="verbatim-bench-pipeline-", dir=work_root) as tmp:
        with verbatim_server(Path(tmp)) as server:
            with ApiClient(server.base_url) as client:
                result = time_transcription(client, audio, model)
            result["server_ready_s"] = server.ready_s
        return result


def time_transcription(client: ApiClient, audio: Path, model: str) -> dict[str, Any]:
    """Upload, request the transcription, poll the job until completed: the client's clock.

    Then read the job and the transcription back to break the time down.
    """
    started = time.perf_counter()
    uploaded = expect(client.upload(multipart_body(audio)), 201)
    upload_done = time.perf_counter()
    request = {"model": model, **TRANSCRIBE_OPTIONS}
    accepted = client.post_json(f"/api/v1/audio/{uploaded['id']}/transcriptions", request, 202)
    request_done = time.perf_counter()
    job = poll_job(client, accepted["job_id"], timeout_s=600 + 20 * (uploaded["duration"] or 0))
    finished = time.perf_counter()
    seen_at = datetime.now(UTC)

    transcription = client.get_json(f"/api/v1/transcriptions/{accepted['transcription_id']}")
    return {
        "end_to_end_s": finished - started,
        "upload_s": upload_done - started,
        "request_s": request_done - upload_done,
        **breakdown(job, transcription, seen_at),
        "duration_s": transcription["duration"],
        "language": transcription["language"],
        "segments": len(transcription["segments"]),
        "words": transcription["word_count"],
        "text": transcription["text"] or "",
    }


def poll_job(client: ApiClient, job_id: str, timeout_s: float) -> dict[str, Any]:
    """GET the job every POLL_INTERVAL_S until completed; a BenchError if it ends otherwise."""
    deadline = time.perf_counter() + timeout_s
    while True:
        job = client.get_json(f"/api/v1/jobs/{job_id}")
        if job["status"] == "completed":
            return job
        if job["status"] in ("failed", "cancelled"):
            raise BenchError(
                f"the job {job['status']}: {job['error_code']}: {job['error_message']}"
            )
        if time.perf_counter() > deadline:
            raise BenchError(f"the job was still {job['status']} after {timeout_s:.0f} s")
        time.sleep(POLL_INTERVAL_S)


def breakdown(
    job: dict[str, Any], transcription: dict[str, Any], seen_at: datetime
) -> dict[str, float]:
    """Where the service's time went, from the API's own data.

    - queue_wait_s: job.started_at - job.created_at (until a worker claimed it)
    - transcription_s: transcription.processing_time_s (decode + model, in the engine process)
    - result_write_s: job.finished_at - job.started_at - processing_time_s: the worker's time
      outside the engine's timed section, mostly handing the result over from the engine
      process and writing the segments
    - completion_seen_s: from job.finished_at until the poll saw it (at most one poll interval
      plus a request; same machine, so the clocks agree)
    """
    created = _timestamp(job["created_at"])
    started = _timestamp(job["started_at"])
    finished = _timestamp(job["finished_at"])
    processing = float(transcription["processing_time_s"])
    return {
        "queue_wait_s": (started - created).total_seconds(),
        "transcription_s": processing,
        "result_write_s": (finished - started).total_seconds() - processing,
        "completion_seen_s": (seen_at - finished).total_seconds(),
    }


def _timestamp(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- one benchmark run ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Reference then service, `args.repeat` times alternating; print and return the summary."""
    audio = input_file(args)
    references: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    for index in range(args.repeat):
        label = f"[{index + 1}/{args.repeat}]"
        print(f"{label} reference: bare faster-whisper in a fresh process ...", flush=True)
        references.append(run_reference(audio, args.model))
        print(f"{label}   transcribe {references[-1]['transcribe_s']:.2f} s", flush=True)
        print(f"{label} service: fresh verbatim serve, upload + transcribe + poll ...", flush=True)
        services.append(run_service(audio, args.model, args.tmp_dir))
        print(f"{label}   end to end {services[-1]['end_to_end_s']:.2f} s", flush=True)
    summary = summarize(audio, args.model, references, services)
    print_report(summary)
    if args.file is None and summary["audio_duration_s"] < MIN_DEFAULT_DURATION_S:
        print(
            f"warning: {audio.name} is shorter than {MIN_DEFAULT_DURATION_S:.0f} s; "
            f"remake it with {MAKE_FIXTURE}"
        )
    return summary


def summarize(
    audio: Path, model: str, references: list[dict[str, Any]], services: list[dict[str, Any]]
) -> dict[str, Any]:
    duration = float(references[0]["duration_s"])
    bare_s = median(r["transcribe_s"] for r in references)
    service_s = median(s["end_to_end_s"] for s in services)
    ratio = service_s / bare_s
    keys = (
        "upload_s",
        "request_s",
        "queue_wait_s",
        "transcription_s",
        "result_write_s",
        "completion_seen_s",
    )
    parts = {key: median(s[key] for s in services) for key in keys}
    parts["unaccounted_s"] = service_s - sum(parts.values())
    strip = ("text",)
    return {
        "file": str(audio),
        "model": model,
        "options": TRANSCRIBE_OPTIONS,
        "runs": len(services),
        "audio_duration_s": duration,
        "reference_transcribe_s": bare_s,
        "reference_model_load_s": median(r["model_load_s"] for r in references),
        "reference_rtf": bare_s / duration,
        "service_end_to_end_s": service_s,
        "service_rtf": service_s / duration,
        "service_processing_time_s": parts["transcription_s"],
        "service_startup_s": median(s["server_ready_s"] for s in services),
        "ratio_service_over_reference": ratio,
        "target_ratio_max": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "service_breakdown_s": parts,
        "same_text": all(s["text"] == r["text"] for s, r in zip(services, references, strict=True)),
        "reference_runs": [{k: v for k, v in r.items() if k not in strip} for r in references],
        "service_runs": [{k: v for k, v in s.items() if k not in strip} for s in services],
    }


def print_report(s: dict[str, Any]) -> None:
    runs = f"median of {s['runs']} runs" if s["runs"] > 1 else "1 run"
    parts = s["service_breakdown_s"]
    verdict = "PASS" if s["meets_target"] else "MISS"
    print()
    print(
        f"== pipeline: {Path(s['file']).name}, {s['audio_duration_s']:.1f} s of audio, "
        f"model {s['model']}, {runs} =="
    )
    print(
        f"  reference, bare faster-whisper   {s['reference_transcribe_s']:8.2f} s   "
        f"RTF {s['reference_rtf']:.4f}   (model load {s['reference_model_load_s']:.2f} s, "
        "not compared)"
    )
    print(
        f"  service, end to end              {s['service_end_to_end_s']:8.2f} s   "
        f"RTF {s['service_rtf']:.4f}   (server start-up {s['service_startup_s']:.1f} s, "
        "not compared)"
    )
    print(
        f"  ratio service / bare             {s['ratio_service_over_reference']:8.3f}     "
        f"target <= {s['target_ratio_max']:.2f}   {verdict}"
    )
    print(f"  service processing_time_s        {s['service_processing_time_s']:8.2f} s")
    print("  service breakdown:")
    labels = {
        "upload_s": "upload (client)",
        "request_s": "request transcription (client)",
        "queue_wait_s": "queue wait (job started_at - created_at)",
        "transcription_s": "transcription (processing_time_s)",
        "result_write_s": "result write (finished_at - started_at - processing)",
        "completion_seen_s": "until the poll saw it (now - finished_at)",
        "unaccounted_s": "unaccounted",
    }
    for key, label in labels.items():
        print(f"    {label:<54} {parts[key]:8.3f} s")
    same = "yes" if s["same_text"] else "NO (check the settings match)"
    print(f"  same transcript as the reference: {same}")
