"""Quality metrics of a multi-engine transcription (issue 11)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from verbatim.deps import CurrentUser, SessionDep
from verbatim.reconciliation import service
from verbatim.reconciliation.schemas import MetricsOut

router = APIRouter(prefix="/api/v1", tags=["transcriptions"])


@router.get(
    "/transcriptions/{transcription_id}/metrics",
    response_model=MetricsOut,
    responses={
        404: {"description": "transcription_not_found"},
        409: {"description": "transcription_not_ready"},
    },
)
async def transcription_metrics(
    transcription_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> object:
    """How each engine of a multi-engine transcription did against the consensus (WER, mean
    confidence, words, processing time, cost), the mean agreement and the low-agreement spans a
    person should check. A single-engine transcription answers its one engine's figures (no
    agreement, no spans)."""
    return await service.get_metrics(session, user, transcription_id)
