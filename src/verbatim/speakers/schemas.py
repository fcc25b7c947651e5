"""Speakers of a transcription and the user's voice profiles: request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from verbatim.kit.schemas import Page, RequestModel


def _clean_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


class SpeakerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str = Field(description="Stable within the transcription: SPEAKER_1 speaks first")
    display_name: str | None = Field(description="Set by a rename or a voice profile match")
    name: str = Field(description="display_name, or the label while unnamed")
    talk_time: float = Field(description="Seconds of speech")
    word_count: int
    voice_profile_id: uuid.UUID | None = Field(
        description="The voice profile matched or saved for this speaker"
    )
    match_confidence: float | None = Field(
        description="Cosine similarity of the voice to the matched profile (0-1)"
    )
    has_voice: bool = Field(description="A voice embedding is kept: save_voice can use it")


class SpeakerUpdate(RequestModel):
    display_name: str | None = Field(
        min_length=1,
        max_length=200,
        description="The new name; null clears it (the label shows again)",
    )
    save_voice: bool = Field(
        default=False,
        description="Also save this speaker's voice (its embedding, never audio) as a voice "
        "profile named display_name, or add it to the profile of that name: later dialogue "
        "transcriptions then label this voice by name",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"display_name": "Alice", "save_voice": True}]},
    )

    @field_validator("display_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _clean_name(value)


class SpeakerMerge(RequestModel):
    into: str = Field(min_length=1, max_length=100, description="Label of the speaker that remains")

    model_config = ConfigDict(json_schema_extra={"examples": [{"into": "SPEAKER_1"}]})


class SpeakerList(BaseModel):
    items: list[SpeakerOut]


class VoiceProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    samples: int = Field(description="Speakers averaged into this voice")
    created_at: datetime
    updated_at: datetime


class VoiceProfileUpdate(RequestModel):
    name: str = Field(min_length=1, max_length=200)

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Alice Martin"}]})

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        cleaned = _clean_name(value)
        assert cleaned is not None
        return cleaned


class VoiceProfilePage(Page[VoiceProfileOut]):
    pass
