"""Dialogue-mode benchmark: diarization quality on the synthetic set, and what it costs.

`python -m bench.run diarization [--model tiny.en] [--quick]`

Quality, on tests/fixtures/dialogue/*.ogg (made by `python scripts/make_fixtures.py --dialogue`,
exact references) plus a long file (10+ min) built here by concatenating the mono
conversations five times (their speakers are voice names, so the reference stays consistent
across pieces; 4 voices):

- DER with a 0.25 s collar (pyannote.metrics `DiarizationErrorRate(collar=0.25)`, overlap kept),
  and its parts (missed speech, false alarm, confusion);
- speaker count right or not;
- word-level speaker accuracy: faster-whisper's words (the service's model and options), each
  given the hypothesis speaker with the most overlap, against the script's speaker of the turn
  the word falls in (most overlap), after the optimal label mapping DER uses;
- the stereo call with `method="auto"` (must detect per-channel) and with `method="channels"`.

Cost, on the pipeline's bench clip (bench/data/speech_10min.ogg, 621 s): diarization time
against faster-whisper's transcription time of the same clip, and the memory diarization adds to
a process that already holds faster-whisper and the audio (peak RSS sampled every 5 ms in a
fresh child process, minus its RSS just before the call).

Targets: DER <= 5 %, right count on >= 90 % of files, stereo DER <= 2 %, added time <= 10 % of
transcription, memory added <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

from bench.common import REPO_ROOT, BenchError, child_env

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "dialogue"
BENCH_CLIP = REPO_ROOT / "bench" / "data" / "speech_10min.ogg"
COLLAR = 0.25
LONG_PARTS = ("two_interview", "three_meeting", "two_noisy_15db", "one_speaker")
LONG_REPEAT = 5
TARGETS = {"der": 0.05, "count": 0.90, "stereo_der": 0.02, "time_ratio": 0.10, "memory_mb": 150}
TRANSCRIBE_OPTIONS: dict[str, Any] = {"beam_size": 5, "word_timestamps": True, "vad_filter": False}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("diarization")
    group.add_argument(
        "--quick",
        action="store_true",
        help="diarization: DER and counts only (no transcription, no cost figures)",
    )


# --- references -----------------------------------------------------------------------------


def load_reference(name: str) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return meta


def fixture_names() -> list[str]:
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    if not names:
        raise BenchError(
            f"no fixtures in {FIXTURES.relative_to(REPO_ROOT)}: "
            "python scripts/make_fixtures.py --dialogue"
        )
    return names


def speech_segments(meta: dict[str, Any], offset: float = 0.0) -> list[tuple[float, float, str]]:
    return [
        (s + offset, e + offset, str(turn["speaker"]))
        for turn in meta["turns"]
        for s, e in turn["speech"]
    ]


def annotation(segments: list[tuple[float, float, str]]) -> Any:
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, (s, e, label) in enumerate(segments):
        if e > s:
            ann[Segment(s, e), i] = label
    return ann


def der_parts(
    reference: list[tuple[float, float, str]], hyp: list[tuple[float, float, str]]
) -> dict[str, float]:
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=COLLAR, skip_overlap=False)
    detail = metric(annotation(reference), annotation(hyp), detailed=True)
    total = detail["total"] or 1.0
    return {
        "der": float(detail["diarization error rate"]),
        "missed": detail["missed detection"] / total,
        "false_alarm": detail["false alarm"] / total,
        "confusion": detail["confusion"] / total,
        "scored_s": float(detail["total"]),
    }


def label_mapping(
    reference: list[tuple[float, float, str]], hyp: list[tuple[float, float, str]]
) -> dict[str, str]:
    from pyannote.metrics.diarization import DiarizationErrorRate

    mapping = DiarizationErrorRate().optimal_mapping(annotation(reference), annotation(hyp))
    return {str(k): str(v) for k, v in mapping.items()}


def max_overlap(start: float, end: float, segments: list[tuple[float, float, str]]) -> str | None:
    best, best_overlap = None, 0.0
    for s, e, label in segments:
        overlap = min(end, e) - max(start, s)
        if overlap > best_overlap:
            best, best_overlap = label, overlap
    if best is None:  # a word in a gap: nearest segment
        mid = (start + end) / 2
        near = min(
            segments, key=lambda seg: min(abs(seg[0] - mid), abs(seg[1] - mid)), default=None
        )
        best = near[2] if near else None
    return best


# --- runs -----------------------------------------------------------------------------------


def diarize_file(audio: np.ndarray, **kwargs: Any) -> tuple[Any, float]:
    from verbatim.diarization import diarize

    started = time.perf_counter()
    result = diarize(audio, **kwargs)
    return result, time.perf_counter() - started


def hyp_segments(result: Any, offset: float = 0.0) -> list[tuple[float, float, str]]:
    return [(t.start + offset, t.end + offset, t.label) for t in result.turns]


def words_of(model: Any, audio: np.ndarray) -> tuple[list[tuple[float, float, str]], float]:
    started = time.perf_counter()
    mono = audio.mean(axis=0).astype(np.float32)
    segments, _ = model.transcribe(mono, **TRANSCRIBE_OPTIONS)
    words = [(w.start, w.end, w.word) for seg in segments for w in (seg.words or ())]
    return words, time.perf_counter() - started


def evaluate_set(model: Any | None) -> list[dict[str, Any]]:
    from verbatim.diarization.audio import load_audio

    rows: list[dict[str, Any]] = []
    for name in fixture_names():
        meta = load_reference(name)
        audio = load_audio(FIXTURES / f"{name}.ogg")
        ref = speech_segments(meta)
        variants: list[tuple[str, dict[str, Any]]] = [("auto", {})]
        if meta["channels"] == 2:
            variants.append(("channels", {"method": "channels"}))
        words = None
        if model is not None:
            words, _ = words_of(model, audio)
        for variant, kwargs in variants:
            result, seconds = diarize_file(audio, **kwargs)
            hyp = hyp_segments(result)
            row: dict[str, Any] = {
                "file": name if variant == "auto" else f"{name} (channels)",
                "duration_s": meta["duration"],
                "ref_speakers": len(meta["speakers"]),
                "hyp_speakers": result.num_speakers,
                "method_used": result.method_used,
                "diarize_s": round(seconds, 2),
                **der_parts(ref, hyp),
            }
            if words is not None:
                mapping = label_mapping(ref, hyp)
                right = 0
                for s, e, _ in words:
                    want = max_overlap(s, e, ref)
                    got = max_overlap(s, e, hyp)
                    right += got is not None and mapping.get(str(want)) == got
                row["words"] = len(words)
                row["word_accuracy"] = right / len(words) if words else None
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def long_file() -> tuple[np.ndarray, list[tuple[float, float, str]], float]:
    from verbatim.diarization.audio import load_audio

    parts: list[np.ndarray] = []
    ref: list[tuple[float, float, str]] = []
    offset = 0.0
    for _ in range(LONG_REPEAT):
        for name in LONG_PARTS:
            audio = load_audio(FIXTURES / f"{name}.ogg")
            ref.extend(speech_segments(load_reference(name), offset))
            parts.append(audio[:1])
            offset += audio.shape[1] / 16_000
    return np.concatenate(parts, axis=1), ref, offset


def evaluate_long() -> dict[str, Any]:
    audio, ref, duration = long_file()
    result, seconds = diarize_file(audio)
    row: dict[str, Any] = {
        "file": f"long ({duration / 60:.1f} min, {len(LONG_PARTS)}x{LONG_REPEAT} pieces)",
        "duration_s": round(duration, 1),
        "ref_speakers": len({s for _, _, s in ref}),
        "hyp_speakers": result.num_speakers,
        "method_used": result.method_used,
        "diarize_s": round(seconds, 2),
        **der_parts(ref, hyp_segments(result)),
    }
    print(format_row(row), flush=True)
    return row


def format_row(row: dict[str, Any]) -> str:
    wa = row.get("word_accuracy")
    return (
        f"| {row['file']} | {row['duration_s']:.1f} | {row['ref_speakers']} | "
        f"{row['hyp_speakers']} | {row['der'] * 100:.2f} % | {row['missed'] * 100:.1f} / "
        f"{row['false_alarm'] * 100:.1f} / {row['confusion'] * 100:.1f} | "
        f"{'-' if wa is None else f'{wa * 100:.1f} %'} | {row['diarize_s']:.2f} |"
    )


HEADER = (
    "| file | s | ref spk | hyp spk | DER | miss / FA / conf % | word spk acc | diarize s |\n"
    "|---|---|---|---|---|---|---|---|"
)


# --- cost (child process) -------------------------------------------------------------------


def cost_child(path: str, model_name: str) -> dict[str, Any]:
    """In a fresh process: transcription time, then diarization time and memory on one clip."""
    import psutil
    from faster_whisper import WhisperModel

    from verbatim.diarization.audio import load_audio
    from verbatim.engines.models import resolve_model

    model = WhisperModel(
        str(resolve_model(model_name, None).path), device="cpu", compute_type="int8", cpu_threads=0
    )
    audio = load_audio(path)
    started = time.perf_counter()
    segments, info = model.transcribe(audio.mean(axis=0), **TRANSCRIBE_OPTIONS)
    n_words = sum(len(s.words or ()) for s in segments)
    transcribe_s = time.perf_counter() - started

    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result, diarize_s = diarize_file(audio)
    stop.set()
    sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return {
        "clip": path,
        "duration_s": float(info.duration),
        "words": n_words,
        "transcribe_s": round(transcribe_s, 2),
        "diarize_s": round(diarize_s, 2),
        "diarize_parts_s": result.timings,
        "windows": result.windows,
        "speakers": result.num_speakers,
        "time_ratio": round(diarize_s / transcribe_s, 4),
        "memory_added_mb": round((peak[0] - before) / 1e6, 1),
        "rss_before_mb": round(before / 1e6, 1),
    }


def run_cost(model: str) -> dict[str, Any]:
    if not BENCH_CLIP.is_file():
        raise BenchError(
            "bench/data/speech_10min.ogg is missing: python scripts/make_fixtures.py --bench"
        )
    argv = [sys.executable, "-m", "bench.diarization", "--cost", str(BENCH_CLIP), "--model", model]
    done = subprocess.run(argv, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"the cost run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cost: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return cost


# --- entry points ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    model = None
    if not args.quick:
        from faster_whisper import WhisperModel

        from verbatim.engines.models import resolve_model

        model = WhisperModel(
            str(resolve_model(args.model, None).path), device="cpu", compute_type="int8"
        )
    print(HEADER, flush=True)
    rows = evaluate_set(model)
    rows.append(evaluate_long())
    scored = [r for r in rows if "(channels)" not in r["file"]]
    mono = [r for r in scored if not r["file"].startswith("stereo")]
    stereo = [r for r in rows if r["file"].startswith("stereo")]
    total = sum(r["scored_s"] for r in mono)
    summary: dict[str, Any] = {
        "der_mono_weighted": sum(r["der"] * r["scored_s"] for r in mono) / total,
        "der_mono_worst": max(r["der"] for r in mono),
        "count_right": sum(r["hyp_speakers"] == r["ref_speakers"] for r in scored) / len(scored),
        "stereo_der_auto": stereo[0]["der"] if stereo else None,
        "stereo_method_auto": stereo[0]["method_used"] if stereo else None,
        "stereo_der_channels": stereo[1]["der"] if len(stereo) > 1 else None,
    }
    accs = [(r["word_accuracy"], r["words"]) for r in rows if r.get("word_accuracy") is not None]
    if accs:
        summary["word_accuracy"] = sum(a * n for a, n in accs) / sum(n for _, n in accs)
    if not args.quick:
        cost = run_cost(args.model)
        summary["cost"] = cost
        print(
            f"\ncost on {BENCH_CLIP.name} ({cost['duration_s']:.0f} s): transcription "
            f"{cost['transcribe_s']:.1f} s, diarization {cost['diarize_s']:.2f} s "
            f"({cost['diarize_parts_s']}, {cost['windows']} windows) = "
            f"{cost['time_ratio'] * 100:.1f} % (target <= 10 %); memory added "
            f"{cost['memory_added_mb']:.0f} MB (target <= 150 MB)"
        )
    print(
        f"\nDER (mono files, weighted by speech) {summary['der_mono_weighted'] * 100:.2f} % "
        f"(worst {summary['der_mono_worst'] * 100:.2f} %, target <= 5 %); right speaker count "
        f"{summary['count_right'] * 100:.0f} % of files (target >= 90 %); stereo DER "
        f"{(summary['stereo_der_auto'] or 0) * 100:.2f} % with auto "
        f"({summary['stereo_method_auto']}), "
        f"{(summary['stereo_der_channels'] or 0) * 100:.2f} % with channels (target <= 2 %)"
        + (
            f"; word speaker accuracy {summary['word_accuracy'] * 100:.1f} %"
            if "word_accuracy" in summary
            else ""
        )
    )
    return {"rows": rows, "summary": summary, "collar_s": COLLAR, "metric": "pyannote.metrics"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cost", required=True, help="clip for the cost run (child mode)")
    parser.add_argument("--model", default="tiny.en")
    args = parser.parse_args()
    print(json.dumps(cost_child(args.cost, args.model)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
