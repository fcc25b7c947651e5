from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from verbatim.kit.schemas import CursorPage, RequestModel
from verbatim.models import SourceType


class AudioFileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    original_filename: str
    size_bytes: int
    sha256: str
    mime_type: str
    container: str
    codec: str
    duration: float | None
    sample_rate: int | None
    channels: int | None
    has_video: bool
    source_type: SourceType
    source_url: str | None
    platform: str | None
    title: str | None
    created_at: datetime
    # Set once the stored media was deleted (retention); the transcripts remain.
    media_deleted_at: datetime | None = None
    # What is stored when it differs from the upload (VERBATIM_STORE_TRANSCODED).
    stored_size_bytes: int | None = None
    stored_mime_type: str | None = None


class UploadOut(AudioFileOut):
    is_duplicate: bool


class AudioPage(CursorPage[AudioFileOut]):
    pass


class BatchDeleteIn(RequestModel):
    ids: list[Annotated[str, Field(max_length=100)]] = Field(min_length=1, max_length=500)


class BatchFailure(BaseModel):
    id: str
    code: str
    message: str


class BatchDeleteOut(BaseModel):
    deleted: list[uuid.UUID]
    failed: list[BatchFailure]
