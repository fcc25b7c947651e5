"""The faster-whisper (CTranslate2) engine. The only module that imports faster_whisper."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from verbatim.engines.base import (
    EngineError,
    EngineResult,
    ModelRef,
    Segment,
    TranscribeOptions,
    Word,
)

ProgressCallback = Callable[[float, float], None]  # (seconds done, total seconds)
StageCallback = Callable[[float, float, str], None]  # (seconds done, total, stage)
SegmentCallback = Callable[[Segment], None]  # each segment as soon as it is decoded


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(
        self,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        batch_size: int = 0,
    ):
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.batch_size = batch_size
        self._models: dict[str, object] = {}

    def load(self, model: ModelRef) -> object:
        """Load once and keep: loading costs far more than a short clip's transcription."""
        if model.path is None:
            raise EngineError("model_unavailable", f"{model.name} is not a local model")
        key = str(model.path)
        if key not in self._models:
            from faster_whisper import WhisperModel

            try:
                self._models[key] = WhisperModel(
                    str(model.path),
                    device=self.device,
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                )
            except Exception as exc:
                raise EngineError(
                    "model_load_failed", f"could not load {model.name}: {exc}"
                ) from exc
        return self._models[key]

    def transcribe(
        self,
        model: ModelRef,
        audio_path: str | Any,  # a path, or float32 16 kHz mono samples
        options: TranscribeOptions,
        on_progress: ProgressCallback | None = None,
        on_stage: StageCallback | None = None,
        on_segment: SegmentCallback | None = None,
    ) -> EngineResult:
        if options.dialogue is not None:
            from verbatim.engines.dialogue import transcribe_dialogue

            def staged(done: float, total: float, stage: str) -> None:
                if on_stage is not None:
                    on_stage(done, total, stage)
                elif on_progress is not None:
                    on_progress(done, total)

            return transcribe_dialogue(self.transcribe, model, audio_path, options, staged)
        whisper = self.load(model)
        started = time.perf_counter()
        extra: dict[str, Any] = {}
        if options.temperature is not None:
            extra["temperature"] = options.temperature  # one fixed temperature, no fallback
        try:
            if self.batch_size > 0:
                from faster_whisper import BatchedInferencePipeline

                # Batches VAD chunks through the model (VAD is always on in this path).
                segments_iter, info = BatchedInferencePipeline(whisper).transcribe(
                    audio_path,
                    language=options.language,
                    task=options.task,
                    initial_prompt=options.initial_prompt,
                    beam_size=options.beam_size,
                    word_timestamps=options.word_timestamps,
                    batch_size=self.batch_size,
                    **extra,
                )
            else:
                segments_iter, info = whisper.transcribe(  # type: ignore[attr-defined]
                    audio_path,
                    language=options.language,
                    task=options.task,
                    initial_prompt=options.initial_prompt,
                    beam_size=options.beam_size,
                    word_timestamps=options.word_timestamps,
                    vad_filter=options.vad_filter,
                    **extra,
                )
        except Exception as exc:
            # faster-whisper decodes the file first (PyAV): a failure here is the input's fault.
            raise EngineError("audio_decode_failed", f"could not decode the audio: {exc}") from exc
        duration = float(info.duration)
        segments: list[Segment] = []
        # The generator runs the model as it is consumed.
        for seg in segments_iter:
            segments.append(_segment(seg))
            if on_segment is not None:
                on_segment(segments[-1])
            if on_progress is not None:
                on_progress(float(seg.end), duration)
        return EngineResult(
            language=info.language,
            language_probability=float(info.language_probability),
            duration=duration,
            model=model,
            segments=segments,
            processing_time_s=time.perf_counter() - started,
        )


def _segment(seg: object) -> Segment:
    words = tuple(
        Word(
            start=round(float(w.start), 3),
            end=round(float(w.end), 3),
            word=str(w.word),
            probability=round(float(w.probability), 4),
        )
        for w in (getattr(seg, "words", None) or ())
    )
    return Segment(
        start=round(float(seg.start), 3),  # type: ignore[attr-defined]
        end=round(float(seg.end), 3),  # type: ignore[attr-defined]
        text=str(seg.text).strip(),  # type: ignore[attr-defined]
        avg_logprob=float(seg.avg_logprob),  # type: ignore[attr-defined]
        no_speech_prob=float(seg.no_speech_prob),  # type: ignore[attr-defined]
        words=words,
    )
