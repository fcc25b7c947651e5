"""Dialogue mode inside the engine process: decode once, transcribe, find speakers, label words.

Runs where the speech model runs (an engine process of the pool), so the speaker models load
once per process and the API's event loop never waits on them. The audio is decoded once at
16 kHz: every channel for the speaker pipeline, their mean for faster-whisper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from verbatim.engines.base import EngineError, EngineResult, ModelRef, TranscribeOptions
from verbatim.speakers.labels import label_transcript

StageProgress = Callable[[float, float, str], None]  # (seconds done, total seconds, stage)

# Share of the progress bar given to speech recognition; the speaker pipeline takes the rest.
TRANSCRIBING_SHARE = 0.9
SAMPLE_RATE = 16000


def decode_channels(path: str) -> np.ndarray:
    """float32 (channels, samples) at 16 kHz: one row for mono, two for anything wider."""
    import av
    from faster_whisper.audio import decode_audio

    try:
        with av.open(path, metadata_errors="ignore") as container:
            channels = container.streams.audio[0].codec_context.channels
    except Exception as exc:
        raise EngineError("audio_decode_failed", f"could not decode the audio: {exc}") from exc
    try:
        if channels >= 2:
            left, right = decode_audio(path, sampling_rate=SAMPLE_RATE, split_stereo=True)
            stacked: np.ndarray = np.stack([left, right]).astype(np.float32, copy=False)
            return stacked
        mono: np.ndarray = decode_audio(path, sampling_rate=SAMPLE_RATE)
        return mono.reshape(1, -1).astype(np.float32, copy=False)
    except Exception as exc:
        raise EngineError("audio_decode_failed", f"could not decode the audio: {exc}") from exc


def transcribe_dialogue(
    transcribe: Callable[..., EngineResult],
    model: ModelRef,
    audio_path: str,
    options: TranscribeOptions,
    on_progress: StageProgress | None = None,
) -> EngineResult:
    """`transcribe(model, audio, options, progress)` is the speech engine's own call."""
    from verbatim.diarization import DiarizationInputError, diarize

    dialogue = options.dialogue
    assert dialogue is not None
    started = time.perf_counter()
    audio = decode_channels(audio_path)
    if dialogue.method == "channels" and audio.shape[0] < 2:
        raise EngineError(
            "channels_need_stereo", "diarization 'channels' needs two channels; the file is mono"
        )
    mono = audio[0] if audio.shape[0] == 1 else audio.mean(axis=0, dtype=np.float32)

    def whisper_progress(done: float, total: float) -> None:
        if on_progress is not None:
            on_progress(TRANSCRIBING_SHARE * done, total, "transcribing")

    # Word timings are what puts each word with its speaker: always on here, dropped after
    # labelling when the request turned them off.
    result = transcribe(
        model, mono, replace(options, word_timestamps=True, dialogue=None), whisper_progress
    )
    del mono
    if on_progress is not None:
        on_progress(TRANSCRIBING_SHARE * result.duration, result.duration, "diarizing")
    diarize_started = time.perf_counter()
    try:
        found = diarize(
            audio,
            num_speakers=dialogue.num_speakers,
            min_speakers=dialogue.min_speakers,
            max_speakers=dialogue.max_speakers,
            method="channels" if dialogue.method == "channels" else "auto",
        )
    except DiarizationInputError as exc:
        raise EngineError(exc.code, str(exc)) from exc
    diarize_s = time.perf_counter() - diarize_started
    centroids = {
        label: np.asarray(v, dtype=np.float32).tolist() for label, v in found.centroids.items()
    }
    segments, speakers = label_transcript(result.segments, found.turns, centroids)
    if not options.word_timestamps:
        segments = [replace(s, words=()) for s in segments]
    result.segments = segments
    result.speakers = speakers
    result.diarization = _summary(found, diarize_s, audio.shape[0])
    result.processing_time_s = time.perf_counter() - started
    return result


def _summary(found: Any, seconds: float, channels: int) -> dict[str, Any]:
    return {
        "method": str(getattr(found, "method_used", "unknown")),
        "seconds": round(seconds, 3),
        "channels": channels,
        "turns": len(found.turns),
    }
