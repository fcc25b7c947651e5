"""POST /api/v1/transcriptions/{id}/reprocess."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from verbatim.deps import CurrentUser, SessionDep, SettingsDep
from verbatim.reprocess import service
from verbatim.reprocess.schemas import ReprocessStarted
from verbatim.transcriptions.schemas import TranscriptionCreate

router = APIRouter(prefix="/api/v1/transcriptions", tags=["transcriptions"])


@router.post(
    "/{transcription_id}/reprocess",
    response_model=ReprocessStarted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "transcription_not_found"},
        409: {"description": "transcription_not_ready, reprocess_in_progress"},
        410: {"description": "media_expired"},
        422: {"description": "engine_unavailable, model_unavailable, mode_unsupported, ..."},
    },
)
async def reprocess(
    transcription_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    body: TranscriptionCreate | None = None,
) -> object:
    """Run the transcription again with other settings (the same fields as creating one; those
    left out keep their current value). The current version stays readable and exportable
    while the job runs; on success the result is a new current version (kind `reprocess`),
    search re-indexes it and the stored files are rewritten; on failure nothing changes."""
    transcription, job, version = await service.request_reprocess(
        session, settings, user, transcription_id, body or TranscriptionCreate()
    )
    run = job.payload["reprocess"]
    return {
        "transcription_id": transcription.id,
        "job_id": job.id,
        "current_version": version,
        "engine": run["engine"],
        "model": run["model"],
        "options": run["options"],
    }
