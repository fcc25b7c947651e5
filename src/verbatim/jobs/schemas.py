from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from verbatim.kit.schemas import CursorPage
from verbatim.models import JobStatus, JobType


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: JobType
    status: JobStatus
    progress: float
    stage: str | None
    attempts: int
    error_code: str | None
    error_message: str | None
    audio_file_id: uuid.UUID | None
    transcription_id: uuid.UUID | None
    # Per job type: a download's url, downloaded_bytes, total_bytes, is_duplicate, ...
    detail: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class JobPage(CursorPage[JobOut]):
    pass
