"""What a cloud engine is: an async client that sends audio to a provider and maps the answer.

Cloud engines run in the worker's event loop (they wait on the network, not the CPU). The job
gives them hooks: `submitted` stores the provider's job id at once (its own transaction), so a
worker restarted mid-poll resumes instead of paying twice; `progress` raises JobCancelled when
the owner cancelled, and the runner then asks the provider to cancel too.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from verbatim.engines.base import EngineResult, Segment, SpeakerStats, TranscribeOptions, Word
from verbatim.engines.splitting import split_on_silence


@dataclass(frozen=True)
class CloudRequest:
    model: str
    options: TranscribeOptions
    # Set when an earlier attempt already submitted: poll this job instead of submitting.
    provider_job_id: str | None = None


class CloudHooks(Protocol):
    async def submitted(self, provider_job_id: str) -> None: ...

    async def progress(self, percent: float, stage: str) -> None: ...


class CloudEngine(ABC):
    name: str

    @abstractmethod
    async def transcribe(
        self, audio_path: Path, request: CloudRequest, hooks: CloudHooks
    ) -> EngineResult:
        """Run the provider's transcription; raise EngineError (transient or not) on failure."""

    async def cancel(self, provider_job_id: str) -> None:  # noqa: B027 - optional
        """Cancel (or delete) the job at the provider, where its API allows; best effort."""

    async def aclose(self) -> None:  # noqa: B027 - optional
        """Close the HTTP client."""


# One provider job per part of the audio: (offset s, duration s, the provider's id).
PartJob = tuple[float, float, str]


async def submit_or_resume(
    audio_path: Path,
    request: CloudRequest,
    hooks: CloudHooks,
    *,
    max_bytes: int,
    submit: Callable[[Path], Awaitable[str]],
) -> list[PartJob]:
    """The provider jobs for this request, for engines that send the audio inline in parts.

    An earlier attempt's stored jobs are returned as they are (a retried job, or one taken over
    from a killed worker, polls them: the provider is paid once). Otherwise the audio is cut on
    silence under `max_bytes`, `submit` sends each part and answers its provider id, and the
    ids are stored through `hooks.submitted` before anything is polled. A failure between two
    parts' submissions stores nothing, so a retry submits every part again (accepted: only
    files past the inline limit have several parts)."""
    if request.provider_job_id:
        return parse_job_id(request.provider_job_id)
    await hooks.progress(0.0, "uploading")
    jobs: list[PartJob] = []
    with tempfile.TemporaryDirectory(prefix="verbatim-parts-") as tmp:
        parts = await asyncio.to_thread(split_on_silence, audio_path, max_bytes, Path(tmp))
        for part in parts:
            provider_id = await submit(part.path)
            jobs.append((round(part.offset, 3), round(part.duration, 3), provider_id))
    await hooks.submitted(format_job_id(jobs))
    return jobs


def format_job_id(jobs: Sequence[PartJob]) -> str:
    """`offset:duration@id` per part, comma-separated: what the transcription row stores."""
    return ",".join(f"{offset}:{duration}@{name}" for offset, duration, name in jobs)


def parse_job_id(value: str) -> list[PartJob]:
    jobs = []
    for item in value.split(","):
        times, _, name = item.partition("@")
        offset, _, duration = times.partition(":")
        jobs.append((float(offset), float(duration), name))
    return jobs


def logprob(confidence: float | None) -> float:
    """Providers give a 0-1 confidence; segments keep whisper's log-probability scale."""
    if confidence is None or confidence <= 0:
        return -10.0
    return round(math.log(min(confidence, 1.0)), 4)


def speaker_stats(segments: Sequence[Segment]) -> list[SpeakerStats]:
    """Talk time and words per speaker label, in order of first appearance (no voice centroid:
    providers do not return one, so voice profiles cannot name these speakers)."""
    talk: dict[str, float] = {}
    words: dict[str, int] = {}
    for seg in segments:
        if seg.speaker is None:
            continue
        talk[seg.speaker] = talk.get(seg.speaker, 0.0) + max(seg.end - seg.start, 0.0)
        words[seg.speaker] = words.get(seg.speaker, 0) + (len(seg.words) or len(seg.text.split()))
    return [
        SpeakerStats(label=label, talk_time=round(talk[label], 3), word_count=words[label])
        for label in talk
    ]


def group_words(
    words: Sequence[Word], *, max_words: int = 40, max_gap_s: float = 1.0
) -> list[tuple[Word, ...]]:
    """Words into segment-sized runs: a sentence end, a pause or a length limit closes one."""
    runs: list[tuple[Word, ...]] = []
    current: list[Word] = []
    for word in words:
        if current and (word.start - current[-1].end > max_gap_s or len(current) >= max_words):
            runs.append(tuple(current))
            current = []
        current.append(word)
        if word.word.rstrip().endswith((".", "?", "!")):
            runs.append(tuple(current))
            current = []
    if current:
        runs.append(tuple(current))
    return runs


def segment_of(words: tuple[Word, ...], speaker: str | None = None) -> Segment:
    mean = sum(w.probability for w in words) / len(words)
    return Segment(
        start=words[0].start,
        end=words[-1].end,
        text=" ".join(w.word.strip() for w in words),
        avg_logprob=logprob(mean),
        no_speech_prob=0.0,
        words=words,
        speaker=speaker,
    )


# Whisper-style servers answer `language` with an English name ("english"); store ISO codes.
LANGUAGE_NAMES = {
    "english": "en",
    "german": "de",
    "french": "fr",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "russian": "ru",
    "ukrainian": "uk",
    "polish": "pl",
    "czech": "cs",
    "swedish": "sv",
    "norwegian": "no",
    "danish": "da",
    "finnish": "fi",
    "turkish": "tr",
    "greek": "el",
    "arabic": "ar",
    "hebrew": "he",
    "hindi": "hi",
    "chinese": "zh",
    "japanese": "ja",
    "korean": "ko",
    "vietnamese": "vi",
    "indonesian": "id",
    "thai": "th",
    "romanian": "ro",
    "hungarian": "hu",
    "kazakh": "kk",
}


def language_code(value: str | None, fallback: str | None = None) -> str:
    if not value:
        return fallback or "und"
    value = value.strip().lower()
    if value in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[value]
    # Already a code ("en", "en_us", "en-US"): keep its language part.
    head = value.replace("_", "-").split("-")[0]
    return head if 2 <= len(head) <= 3 else (fallback or "und")
