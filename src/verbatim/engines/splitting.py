"""Audio too large for a server's upload limit, cut on silence into WAV parts.

The audio is decoded once at 16 kHz mono; Silero VAD (shipped with faster-whisper) finds the
speech; each part ends in the middle of the widest pause of its last half, so no word is cut
(a hard cut only where a part holds no pause at all). Parts are 16-bit PCM WAV, whose size is
known in advance (32 kB per second), sized to stay under the limit.
"""

from __future__ import annotations

import itertools
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2
WAV_HEADER_BYTES = 44
MIN_PAUSE_S = 0.2


@dataclass(frozen=True)
class Part:
    path: Path
    offset: float  # where the part starts in the whole file, seconds
    duration: float


def max_part_seconds(max_bytes: int) -> float:
    # A little room below the limit for the multipart envelope around the file.
    return (max_bytes - WAV_HEADER_BYTES - 16 * 1024) / BYTES_PER_SECOND


def plan_cuts(speech: list[tuple[float, float]], total: float, max_len: float) -> list[float]:
    """Cut points (seconds) so that no part is longer than `max_len`, in pauses where possible."""
    pauses: list[tuple[float, float]] = []  # (start, end) of silence between speech
    previous_end = 0.0
    for start, end in speech:
        if start - previous_end >= MIN_PAUSE_S:
            pauses.append((previous_end, start))
        previous_end = max(previous_end, end)
    if total - previous_end >= MIN_PAUSE_S:
        pauses.append((previous_end, total))
    cuts: list[float] = []
    position = 0.0
    while total - position > max_len:
        limit = position + max_len
        half = position + max_len / 2
        # Pauses inside (half, limit], clipped to it; the widest one wins.
        best: tuple[float, float] | None = None
        for p_start, p_end in pauses:
            start, end = max(p_start, half), min(p_end, limit)
            if end - start > 0 and (best is None or end - start > best[1] - best[0]):
                best = (start, end)
        cut = (best[0] + best[1]) / 2 if best is not None else limit
        cuts.append(round(cut, 3))
        position = cut
    return cuts


def split_on_silence(path: Path, max_bytes: int, out_dir: Path) -> list[Part]:
    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio: np.ndarray = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    total = len(audio) / SAMPLE_RATE
    stamps = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=200))
    speech = [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
    cuts = plan_cuts(speech, total, max_part_seconds(max_bytes))
    bounds = [0.0, *cuts, total]
    parts = []
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        part_path = out_dir / f"part{index:04d}.wav"
        with wave.open(str(part_path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(pcm[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)].tobytes())
        parts.append(Part(path=part_path, offset=start, duration=end - start))
    return parts
