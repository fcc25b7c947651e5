from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from verbatim.kit.schemas import Page
from verbatim.models import Mode, TranscriptionStatus

_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class TranscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(default=None, description="ISO 639-1 code; omit to detect")
    model: str | None = Field(default=None, description="e.g. tiny.en, large-v3, or a path")
    mode: Mode = Mode.mono
    engine: str = Field(default="faster-whisper")
    word_timestamps: bool = True
    vad_filter: bool = False
    beam_size: int = Field(default=5, ge=1, le=10)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or value in ("", "auto"):
            return None
        value = value.lower()
        if not _LANGUAGE.match(value):
            raise ValueError("language must be an ISO 639-1 code such as 'en'")
        return value


class TranscriptionStarted(BaseModel):
    transcription_id: uuid.UUID
    job_id: uuid.UUID
    status: TranscriptionStatus


class WordOut(BaseModel):
    start: float
    end: float
    word: str
    probability: float | None = None


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    index: int
    start: float
    end: float
    text: str
    speaker: str | None
    confidence: float | None
    words: list[WordOut]


class TranscriptionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    audio_file_id: uuid.UUID
    status: TranscriptionStatus
    requested_language: str | None
    language: str | None
    language_probability: float | None
    mode: Mode
    engine: str
    model_name: str
    model_version: str | None
    options: dict[str, Any]
    avg_confidence: float | None
    word_count: int | None
    duration: float | None
    processing_time_s: float | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    completed_at: datetime | None


class TranscriptionOut(TranscriptionSummary):
    text: str | None
    quality: dict[str, Any] | None
    segments: list[SegmentOut]


class TranscriptionPage(Page[TranscriptionSummary]):
    pass
