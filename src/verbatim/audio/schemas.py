from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from verbatim.kit.schemas import Page
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


class UploadOut(AudioFileOut):
    is_duplicate: bool


class AudioPage(Page[AudioFileOut]):
    pass
