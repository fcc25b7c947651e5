"""What every speech engine takes and returns. Plain dataclasses: they cross process boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None  # None: detect
    word_timestamps: bool = True
    vad_filter: bool = False
    beam_size: int = 5
    # Dialogue mode: who speaks when (None: mono, no speakers).
    dialogue: DialogueOptions | None = None
    # "translate": speech in any language to English text (multilingual models only).
    task: str = "transcribe"
    initial_prompt: str | None = None  # text the decoder is primed with (names, spelling)
    temperature: float | None = None  # None: the engine's fallback schedule (0.0, 0.2, ...)
    # Send each segment to the caller as soon as it is decoded (streamed answers).
    stream_segments: bool = False


@dataclass(frozen=True)
class DialogueOptions:
    method: str = "auto"  # "auto" (stereo calls by channel, else clustering) or "channels"
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()
    speaker: str | None = None  # dialogue mode: SPEAKER_1, SPEAKER_2, ...


@dataclass(frozen=True)
class SpeakerStats:
    label: str
    talk_time: float  # seconds of the speaker's turns
    word_count: int
    centroid: tuple[float, ...] | None = None  # L2-normalised speaker embedding (192-d)


@dataclass(frozen=True)
class ModelRef:
    """A model resolved to a local directory before any job is queued."""

    name: str
    path: Path | None = None  # None: a cloud engine's model, named for the provider
    version: str | None = None


@dataclass
class EngineResult:
    language: str
    language_probability: float
    duration: float
    model: ModelRef
    segments: list[Segment] = field(default_factory=list)
    processing_time_s: float = 0.0
    # Dialogue mode: one entry per speaker heard (label, talk time, words, voice centroid).
    speakers: list[SpeakerStats] = field(default_factory=list)
    # Dialogue mode: how speakers were found ({"method", "seconds", ...}); None in mono mode.
    diarization: dict[str, Any] | None = None
    # Cloud engines: the provider's answer as received (kept for reconciliation) and job id.
    raw: Any = None
    provider_job_id: str | None = None


class EngineError(Exception):
    """A transcription that cannot succeed as asked; `code` is shown to the user."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


class ModelUnavailable(EngineError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__("model_unavailable", f"model {name!r} cannot be loaded here: {reason}")
        self.name = name
