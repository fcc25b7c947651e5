"""Editing a transcript's turns, and its versions."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Query

from verbatim.deps import CurrentUser, ServicesDep, SessionDep
from verbatim.models import Segment
from verbatim.services import Services
from verbatim.speakers.service import speaker_names
from verbatim.transcriptions.outputs import write_outputs_quietly
from verbatim.versions import service
from verbatim.versions.schemas import (
    EditResult,
    SegmentEdit,
    SegmentMerge,
    SegmentSplit,
    VersionDiff,
    VersionList,
    VersionRead,
)

router = APIRouter(prefix="/api/v1/transcriptions/{transcription_id}", tags=["editing"])

SegmentIndex = Annotated[int, Path(ge=0, le=10_000_000)]
_EDIT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "transcription_not_found, segment_not_found"},
    409: {"description": "transcription_not_ready, version_conflict"},
    422: {"description": "nothing_to_change, empty_text, unknown_speaker, split_out_of_range, ..."},
}


async def _result(
    session: SessionDep,
    services: Services,
    background: BackgroundTasks,
    transcription_id: uuid.UUID,
    version: int,
    segments: list[Segment],
) -> dict[str, Any]:
    # The stored files follow the new version once the edit committed (the session dependency
    # commits before the response, and background tasks run after it).
    background.add_task(
        write_outputs_quietly, services.sessionmaker, services.storage, transcription_id
    )
    names = await speaker_names(session, transcription_id)
    return {
        "version": version,
        "segments": [
            {
                **service.segment_dict(s),
                "speaker_name": names.get(s.speaker, s.speaker) if s.speaker else None,
            }
            for s in segments
        ],
        "segment_count": await service.segment_count(session, transcription_id),
    }


@router.patch("/segments/{index}", response_model=EditResult, responses=_EDIT_ERRORS)
async def edit_segment(
    transcription_id: uuid.UUID,
    index: SegmentIndex,
    body: SegmentEdit,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    background: BackgroundTasks,
) -> object:
    """Change a turn's text and/or speaker. The server re-aligns the words: unchanged words keep
    their times, changed and inserted ones are timed between their neighbours. A new version is
    recorded and search re-indexes."""
    version, segments = await service.edit_segment(session, user, transcription_id, index, body)
    return await _result(session, services, background, transcription_id, version, segments)


@router.post("/segments/{index}/split", response_model=EditResult, responses=_EDIT_ERRORS)
async def split_segment(
    transcription_id: uuid.UUID,
    index: SegmentIndex,
    body: SegmentSplit,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    background: BackgroundTasks,
) -> object:
    """Split a turn in two before one of its words; every word keeps its time."""
    version, segments = await service.split_segment(
        session, user, transcription_id, index, body.word_index, body.base_version
    )
    return await _result(session, services, background, transcription_id, version, segments)


@router.post("/segments/{index}/merge", response_model=EditResult, responses=_EDIT_ERRORS)
async def merge_segment(
    transcription_id: uuid.UUID,
    index: SegmentIndex,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    background: BackgroundTasks,
    body: SegmentMerge | None = None,
) -> object:
    """Merge a turn with the next one (the first turn's speaker says both)."""
    version, segments = await service.merge_segment(
        session, user, transcription_id, index, body.base_version if body else None
    )
    return await _result(session, services, background, transcription_id, version, segments)


@router.get("/versions", response_model=VersionList)
async def list_versions(
    transcription_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> object:
    """Every version, newest first. Empty until the first change (then 1 is the original)."""
    items, current = await service.list_versions(session, user, transcription_id)
    return {"items": items, "current": current}


@router.get(
    "/versions/diff",
    response_model=VersionDiff,
    responses={404: {"description": "transcription_not_found, version_not_found"}},
)
async def diff_versions(
    transcription_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    from_version: Annotated[int, Query(alias="from", ge=1, le=1_000_000)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=1_000_000)],
) -> object:
    """What changed between two versions, turn by turn with word-level changes; every change
    and every word run carries its times (seconds)."""
    return await service.diff_versions(session, user, transcription_id, from_version, to_version)


@router.get(
    "/versions/{version}",
    response_model=VersionRead,
    responses={404: {"description": "transcription_not_found, version_not_found"}},
)
async def read_version(
    transcription_id: uuid.UUID,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    user: CurrentUser,
    session: SessionDep,
) -> object:
    """One version as it was: its turns with words, speakers, and what produced it (`run`:
    engine, model, options, metrics; recorded for engine and reprocess versions). Export it
    with GET /transcriptions/{id}/export?version=N."""
    return await service.read_version(session, user, transcription_id, version)
