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


class DiffEntry(BaseModel):
    op: Literal["replace", "insert", "delete"]
    from_segments: list[int] = Field(description="Indices in the older version")
    to_segments: list[int] = Field(description="Indices in the newer version")
    from_text: str
    to_text: str
    words: list[dict[str, str]] = Field(
        description="Word-level changes: {op: equal|delete|insert, text}"
    )


class VersionDiff(BaseModel):
    from_version: int
    to_version: int
    changes: list[DiffEntry]
