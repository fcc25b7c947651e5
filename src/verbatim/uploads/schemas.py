from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from verbatim.kit.schemas import RequestModel
from verbatim.models import UploadStatus


class UploadCreate(RequestModel):
    filename: str = Field(min_length=1, max_length=255)
    size: int = Field(gt=0, description="bytes the client will upload")
    content_type: str | None = Field(default=None, max_length=100, description="a hint only")


class PartUrl(BaseModel):
    part_number: int
    size: int
    url: str


class MultipartOut(BaseModel):
    part_size: int
    part_count: int
    parts: list[PartUrl]


class UploadSessionOut(BaseModel):
    id: uuid.UUID
    status: UploadStatus
    filename: str
    size: int
    content_type: str | None
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None
    audio_file_id: uuid.UUID | None
    error_code: str | None
    method: Literal["PUT"] = "PUT"
    # While pending: one URL for the whole file, or one per part (multipart).
    url: str | None = None
    multipart: MultipartOut | None = None
    complete_url: str
