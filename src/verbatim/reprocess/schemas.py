"""Reprocessing: the answer to a queued re-run (the request body is TranscriptionCreate)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class ReprocessStarted(BaseModel):
    transcription_id: uuid.UUID
    job_id: uuid.UUID = Field(description="Follow it at GET /api/v1/jobs/{job_id}")
    current_version: int = Field(
        description="The version that stays current (readable, exported) while the job runs"
    )
    engine: str
    model: str
    options: dict[str, object]
