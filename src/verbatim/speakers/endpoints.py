"""Speakers of a transcription (rename, merge) and the caller's voice profiles."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import Response

from verbatim.deps import CurrentUser, SessionDep
from verbatim.kit.pagination import DEFAULT_LIMIT, Limit, Offset
from verbatim.speakers import service
from verbatim.speakers.schemas import (
    SpeakerList,
    SpeakerMerge,
    SpeakerOut,
    SpeakerUpdate,
    VoiceProfileOut,
    VoiceProfilePage,
    VoiceProfileUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["speakers"])

Label = Annotated[
    str, Path(min_length=1, max_length=100, description="The speaker's label, e.g. SPEAKER_1")
]


@router.get("/transcriptions/{transcription_id}/speakers", response_model=SpeakerList)
async def list_speakers(
    transcription_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> object:
    """Every speaker of a dialogue transcription with talk time and word count (mono: none)."""
    speakers = await service.list_speakers(session, user, transcription_id)
    return {"items": [service.speaker_out(s) for s in speakers]}


@router.patch(
    "/transcriptions/{transcription_id}/speakers/{label}",
    response_model=SpeakerOut,
    responses={
        404: {"description": "transcription_not_found, speaker_not_found"},
        409: {"description": "transcription_not_ready"},
        422: {"description": "voice_name_required, voice_unavailable, validation_error"},
    },
)
async def rename_speaker(
    transcription_id: uuid.UUID,
    label: Label,
    body: SpeakerUpdate,
    user: CurrentUser,
    session: SessionDep,
) -> object:
    """Name a speaker. With `save_voice: true` the voice (its embedding, never audio) is also
    saved as the voice profile of that name, so later dialogue transcriptions recognise it."""
    speaker = await service.rename_speaker(session, user, transcription_id, label, body)
    return service.speaker_out(speaker)


@router.post(
    "/transcriptions/{transcription_id}/speakers/{label}/merge",
    response_model=SpeakerList,
    responses={
        404: {"description": "transcription_not_found, speaker_not_found"},
        409: {"description": "transcription_not_ready"},
        422: {"description": "speaker_merge_self, merge_target_not_found"},
    },
)
async def merge_speaker(
    transcription_id: uuid.UUID,
    label: Label,
    body: SpeakerMerge,
    user: CurrentUser,
    session: SessionDep,
) -> object:
    """Fold speaker `label` into `into` (when the pipeline split one voice in two): its segments,
    talk time and words move over and `label` disappears. Answers the remaining speakers."""
    speakers = await service.merge_speakers(session, user, transcription_id, label, body.into)
    return {"items": [service.speaker_out(s) for s in speakers]}


@router.get("/voice-profiles", response_model=VoiceProfilePage, tags=["voice profiles"])
async def list_voice_profiles(
    user: CurrentUser, session: SessionDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> object:
    """The caller's saved voices, by name."""
    items, total = await service.list_profiles(session, user, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/voice-profiles/{profile_id}", response_model=VoiceProfileOut, tags=["voice profiles"])
async def get_voice_profile(
    profile_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> object:
    return await service.get_profile(session, user, profile_id)


@router.patch(
    "/voice-profiles/{profile_id}",
    response_model=VoiceProfileOut,
    tags=["voice profiles"],
    responses={409: {"description": "voice_profile_exists"}},
)
async def rename_voice_profile(
    profile_id: uuid.UUID, body: VoiceProfileUpdate, user: CurrentUser, session: SessionDep
) -> object:
    """Rename a voice; speakers it named follow the new name."""
    return await service.rename_profile(session, user, profile_id, body.name)


@router.delete(
    "/voice-profiles/{profile_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["voice profiles"],
)
async def delete_voice_profile(
    profile_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> Response:
    """Delete a voice and its embedding. Speakers it named keep their name."""
    await service.delete_profile(session, user, profile_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
