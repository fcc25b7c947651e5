from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from verbatim.kit.schemas import CursorPage, Page, RequestModel
from verbatim.models import JobStatus, TranscriptionStatus

NAME = Field(min_length=1, max_length=200, examples=["Board meetings 2026"])
DESCRIPTION = Field(default=None, max_length=5000, examples=["Monthly board calls, in order"])
Id = Annotated[uuid.UUID, Strict(False)]


def _clean_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if not value:
        raise ValueError("name must not be blank")
    return value


class CollectionCreate(RequestModel):
    name: str = NAME
    description: str | None = DESCRIPTION

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _clean_name(value)


class CollectionUpdate(RequestModel):
    """Only the fields sent change; `description: null` clears it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Board 2026"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = DESCRIPTION

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _clean_name(value)

    @model_validator(mode="after")
    def _something(self) -> CollectionUpdate:
        if not self.model_fields_set:
            raise ValueError("send name and/or description")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class CollectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    item_count: int = Field(description="Transcriptions in the collection")
    total_duration: float = Field(description="Seconds of audio of its transcriptions")
    created_at: datetime
    updated_at: datetime


class CollectionPage(CursorPage[CollectionOut]):
    pass


class Placement(RequestModel):
    """Where an item goes: right before or right after another item of the collection."""

    before: Id | None = Field(default=None, description="Place it before this transcription")
    after: Id | None = Field(default=None, description="Place it after this transcription")


class ItemAdd(Placement):
    """Add a transcription; at the end unless `before` or `after` says where."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"transcription_id": "0b7c6c8e-4f0e-4c1f-9b5e-2d7c1a9f0e11"}]
        }
    )

    transcription_id: Id

    @model_validator(mode="after")
    def _one_place(self) -> ItemAdd:
        if self.before is not None and self.after is not None:
            raise ValueError("send at most one of before and after")
        return self


class ItemMove(Placement):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"before": "0b7c6c8e-4f0e-4c1f-9b5e-2d7c1a9f0e11"}]}
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ItemMove:
        if (self.before is None) == (self.after is None):
            raise ValueError("send exactly one of before and after")
        return self


class CollectionItemOut(BaseModel):
    transcription_id: uuid.UUID
    audio_file_id: uuid.UUID
    position: int = Field(description="0-based place in the collection")
    title: str = Field(description="The audio's title, or its file name")
    status: TranscriptionStatus
    duration: float | None = Field(description="Seconds")
    language: str | None
    added_at: datetime


class CollectionItemPage(Page[CollectionItemOut]):
    pass


class CollectionExportCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"formats": ["txt", "srt"]}]})

    formats: list[str] = Field(
        min_length=1,
        max_length=5,
        description="Any of txt, srt, vtt, json, csv: one file per format and transcription",
    )


class CollectionExportStarted(BaseModel):
    job_id: uuid.UUID
    status: JobStatus
    download_url: str = Field(description="Where the zip is once the job completed")
