from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from verbatim.kit.schemas import Page, RequestModel
from verbatim.models import AssignedBy, AssignmentStatus, TranscriptionStatus

NAME_MAX = 100
DESCRIPTION_MAX = 2000


def _clean_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if not value:
        raise ValueError("name must not be blank")
    return value


class TopicCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Delivery schedule",
                    "description": "Shipping dates, delays, moving a delivery to another month",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=NAME_MAX, description="Unique per user (any case)")
    description: str | None = Field(
        default=None,
        max_length=DESCRIPTION_MAX,
        description="What the topic is about, in words a transcript would use: it is embedded "
        "with the name to find matching passages",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _clean_name(value) or ""


class TopicUpdate(RequestModel):
    """Only the fields sent change; changing either re-scores your transcriptions."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "Delivery dates, late trucks"}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _clean_name(value)

    @model_validator(mode="after")
    def _something(self) -> TopicUpdate:
        if not self.model_fields_set:
            raise ValueError("send name and/or description")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class TopicCounts(BaseModel):
    suggested: int = Field(description="Suggestions waiting for review")
    accepted: int
    rejected: int


class TopicOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    counts: TopicCounts
    created_at: datetime
    updated_at: datetime
    scoring_job_id: uuid.UUID | None = Field(
        default=None,
        description="Set when this answer queued a `topic_scoring` job over your transcriptions",
    )


class TopicPage(Page[TopicOut]):
    pass


class Passage(BaseModel):
    chunk_index: int
    start_time: float = Field(description="Seconds: play from here (`#t=`)")
    end_time: float
    text: str = Field(description="The matching passage (shortened around its best sentence)")
    similarity: float = Field(description="Cosine similarity of the passage to the topic")


class AssignmentOut(BaseModel):
    """A topic on a transcription: a suggestion, or the user's decision."""

    model_config = ConfigDict(from_attributes=True)

    transcription_id: uuid.UUID
    topic_id: uuid.UUID
    topic_name: str
    title: str = Field(description="The transcription's audio title, or its file name")
    transcription_status: TranscriptionStatus
    duration: float | None
    status: AssignmentStatus
    assigned_by: AssignedBy = Field(description="ai: suggested by the scorer; user: by hand")
    user_reviewed: bool
    ai_confidence: float | None = Field(description="0..1; None when assigned by hand")
    ai_reasoning: str | None = Field(
        description="Why: the best-matching passages, quoted with their timestamps"
    )
    passages: list[Passage]
    created_at: datetime
    updated_at: datetime
    reviewed_at: datetime | None


class AssignmentPage(Page[AssignmentOut]):
    pass


class AssignmentSet(RequestModel):
    """Accept or reject a suggestion, or assign a topic by hand (accepted)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "rejected"}]})

    status: Literal["accepted", "rejected"] = Field(
        default="accepted",
        description="accepted (also: assign by hand) or rejected (never suggested again here)",
    )


def passages_of(raw: Any) -> list[dict[str, Any]]:
    return list(raw) if isinstance(raw, list) else []
