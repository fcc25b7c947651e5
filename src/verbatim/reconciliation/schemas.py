from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EngineMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    engine: str = Field(description="engine:model")
    transcription_id: uuid.UUID = Field(description="This engine's run (readable by id)")
    words: int
    wer_vs_consensus: float | None = Field(description="null for a single-engine transcription")
    substitutions: int | None = None
    deletions: int | None = None
    insertions: int | None = None
    weight: float | None = Field(
        default=None, description="Its vote's weight: 1 - WER of a first equal vote"
    )
    mean_confidence: float | None
    processing_time_s: float | None
    cost: float | None = Field(description="USD, from its usage event; null when not priced")


class Span(BaseModel):
    start: float
    end: float
    consensus: str
    engines: list[str] = Field(description="Each engine's words in the span, in engine order")


class MetricsOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    transcription_id: uuid.UUID
    engines: list[EngineMetrics]
    word_count: int
    duration: float | None
    mean_agreement: float | None = Field(description="Mean share of engines agreeing per word")
    unanimous_words: int | None
    mean_confidence: float | None
    low_agreement_spans: list[Span]
    low_agreement_seconds: float
    engines_requested: int
    failed_engines: list[dict[str, Any]] = Field(
        description="Engines whose run did not complete: engine, status, error_code"
    )
    speakers_from: str | None
    llm: dict[str, Any] | None = Field(
        default=None,
        description="The optional LLM pass: model, changes (before, after, reason, source "
        "'llm'), notes, summary, topics; null when VERBATIM_LLM_* is not set",
    )
