from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from verbatim.kit.schemas import CursorPage, Page, RequestModel
from verbatim.models import Mode, TranscriptionStatus
from verbatim.speakers.schemas import SpeakerOut

_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
MAX_SPEAKERS = 20


class TranscriptionCreate(RequestModel):
    language: str | None = Field(
        default=None, max_length=20, description="ISO 639-1 code; omit to detect"
    )
    model: str | None = Field(
        default=None, max_length=200, description="e.g. tiny.en, large-v3, or a path"
    )
    mode: Annotated[Mode, Strict(False)] = Field(
        default=Mode.mono,
        description="mono: one voice, no speakers; dialogue: who said what (speaker labels, "
        "turns, voice profiles matched by name)",
    )
    engine: str = Field(default="faster-whisper", max_length=50)
    engines: list[Annotated[str, Field(min_length=1, max_length=250)]] | None = Field(
        default=None,
        max_length=20,
        description="Several engines, each `engine[:model]` (2 to 5, no duplicates), reconciled "
        "into one transcript with per-word agreement (issue 11); not with `engine`/`model`",
    )
    word_timestamps: bool = True
    vad_filter: bool = False
    beam_size: int = Field(default=5, ge=1, le=10)
    # Dialogue mode only (422 `dialogue_options_need_dialogue_mode` otherwise).
    num_speakers: int | None = Field(
        default=None, ge=1, le=MAX_SPEAKERS, description="Exact speaker count, if known (1-20)"
    )
    min_speakers: int | None = Field(default=None, ge=1, le=MAX_SPEAKERS)
    max_speakers: int | None = Field(default=None, ge=1, le=MAX_SPEAKERS)
    diarization: Literal["auto", "channels", "off"] | None = Field(
        default=None,
        description="Dialogue mode: `auto` (default: stereo calls with one speaker per channel "
        "are split by channel, anything else by voice), `channels` (one speaker per channel; "
        "422 `channels_need_stereo` on a mono file) or `off` (no speaker labels)",
    )

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or value in ("", "auto"):
            return None
        value = value.lower()
        if not _LANGUAGE.match(value):
            raise ValueError("language must be an ISO 639-1 code such as 'en'")
        return value

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"language": "en"},
                {"mode": "dialogue", "min_speakers": 2, "max_speakers": 4},
                {"mode": "dialogue", "diarization": "channels"},
                {"engines": ["faster-whisper:tiny.en", "faster-whisper:base", "assemblyai"]},
            ]
        },
    )


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
    speaker: str | None = Field(description="Dialogue mode: the speaker's label (SPEAKER_1, ...)")
    speaker_name: str | None = Field(
        default=None, description="The speaker's display name, or its label while unnamed"
    )
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
    parent_id: uuid.UUID | None = Field(
        default=None, description="Set on one engine's run of a multi-engine transcription"
    )
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
    speakers: list[SpeakerOut] = Field(description="Dialogue mode: every speaker, by label")
    # One page of segments (segments_offset, segments_limit); all of them are at
    # GET /transcriptions/{id}/segments, paged.
    segments: list[SegmentOut]
    segments_total: int
    segments_offset: int
    segments_limit: int


class SegmentPage(Page[SegmentOut]):
    pass


class TranscriptionPage(CursorPage[TranscriptionSummary]):
    pass


class OutputLinks(BaseModel):
    raw_url: str = Field(description="raw_transcript.json: everything the run produced")
    agent_url: str = Field(description="agent_optimized.json: the agent transcript")
    expires_at: datetime
