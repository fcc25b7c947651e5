"""Transcript edits and versions: request and response shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from verbatim.kit.schemas import RequestModel
from verbatim.models import VersionKind


class SegmentEdit(RequestModel):
    text: str | None = Field(
        default=None,
        max_length=20000,
        description="The turn's new text. Unchanged words keep their times; changed and "
        "inserted words are timed between their neighbours",
    )
    speaker: str | None = Field(
        default=None, max_length=100, description="The label of the speaker who says this turn"
    )
    base_version: int | None = Field(
        default=None,
        ge=1,
        description="The version the edit was made on; 409 version_conflict if another edit "
        "landed since",
    )


class SegmentSplit(RequestModel):
    word_index: int = Field(
        ge=1, description="The first word of the new turn (0-based, within this turn's words)"
    )
    base_version: int | None = Field(default=None, ge=1)


class SegmentMerge(RequestModel):
    base_version: int | None = Field(default=None, ge=1)


class EditResult(BaseModel):
    version: int = Field(description="The new current version")
    segments: list[dict[str, Any]] = Field(
        description="The turns the edit wrote (index, start, end, text, speaker, words)"
    )
    segment_count: int


class VersionOut(BaseModel):
    version: int
    kind: VersionKind
    author_id: uuid.UUID | None
    summary: str
    created_at: datetime
    segment_count: int


class VersionList(BaseModel):
    items: list[VersionOut]
    current: int | None = Field(description="The current version; null before any change")


class WordChange(BaseModel):
    op: Literal["equal", "delete", "insert"]
    text: str
    start: float | None = Field(
        description="Start of the run's first word: the older version's for equal and delete, "
        "the newer one's for insert"
    )
    end: float | None


class DiffEntry(BaseModel):
    op: Literal["replace", "insert", "delete"]
    from_segments: list[int] = Field(description="Indices in the older version")
    to_segments: list[int] = Field(description="Indices in the newer version")
    from_text: str
    to_text: str
    from_start: float | None = Field(description="Where the older turns start (seconds)")
    from_end: float | None
    to_start: float | None = Field(description="Where the newer turns start (seconds)")
    to_end: float | None
    words: list[WordChange] = Field(description="Word-level changes, in order")


class VersionDiff(BaseModel):
    from_version: int
    to_version: int
    changes: list[DiffEntry]


class VersionRead(BaseModel):
    version: int
    current: bool = Field(description="Whether this is the current version")
    kind: VersionKind
    author_id: uuid.UUID | None
    summary: str
    created_at: datetime | None
    run: dict[str, Any] | None = Field(
        description="What produced it: engine, model, options, language and metrics (versions "
        "recorded by a reprocess, and the original once a reprocess replaced it); null for edits"
    )
    text: str
    speakers: list[dict[str, Any]]
    segments: list[dict[str, Any]] = Field(
        description="index, start, end, text, speaker, confidence, words"
    )
