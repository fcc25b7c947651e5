from __future__ import annotations

import uuid

from fastapi import APIRouter, BackgroundTasks, Request, status
from fastapi.responses import Response

from verbatim.audio import service
from verbatim.audio.batch import delete_many, delete_objects
from verbatim.audio.delivery import media_response, upload_response
from verbatim.audio.ingest import receive_upload
from verbatim.audio.schemas import (
    AudioFileOut,
    AudioPage,
    BatchDeleteIn,
    BatchDeleteOut,
    UploadOut,
)
from verbatim.audio.store import transcode_from
from verbatim.audit import service as audit
from verbatim.deps import CurrentUser, Reader, ReadSessionDep, ServicesDep, SessionDep
from verbatim.kit.fastjson import FastJSONResponse
from verbatim.kit.pagination import PageQuery
from verbatim.models import SourceType
from verbatim.transcriptions.outputs import keys_of_audio

router = APIRouter(prefix="/api/v1/audio", tags=["audio"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": UploadOut, "description": "Already in the library (is_duplicate)"},
        400: {"description": "malformed_multipart, file_missing, empty_file"},
        413: {"description": "file_too_large"},
        415: {"description": "unsupported_media"},
        402: {"description": "quota_exceeded (storage_bytes)"},
        429: {"description": "quota_exceeded (uploads_per_hour)"},
    },
)
async def upload_audio(
    request: Request, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> object:
    """Upload media as multipart/form-data (field `file`). Streams to disk; never in memory."""
    received = await receive_upload(
        dict(request.headers),
        request.stream(),
        services.settings.tmp_dir,
        services.settings.max_upload_bytes,
    )
    audio, duplicate = await service.ingest(
        session,
        services.storage,
        user,
        received,
        transcode=transcode_from(services.settings),
        settings=services.settings,
    )
    return upload_response(audio, duplicate)


@router.get("", response_model=AudioPage)
async def list_audio(
    user: Reader,
    session: ReadSessionDep,
    page: PageQuery,
    source_type: SourceType | None = None,
) -> object:
    """Your audio files, newest first. Follow `next_cursor` (pass it as `cursor`) for the next
    page; `total` is exact up to 10,000 files, then an estimate (`total_exact: false`)."""
    result = await service.list_audio(session, user, source_type=source_type, page=page)
    # Rows straight to JSON: the fields are AudioFileOut's, with its encodings (test_list_json).
    return FastJSONResponse(result.response(items=[row._asdict() for row in result.items]))


@router.get("/{audio_id}", response_model=AudioFileOut)
async def get_audio(audio_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    return await service.get_audio(session, user, audio_id)


@router.get(
    "/{audio_id}/content",
    response_class=Response,
    responses={
        410: {"description": "media_expired"},
        416: {"description": "range_not_satisfiable"},
    },
)
# HEAD answers with GET's headers and no body (media players and `curl -I` use it); one
# operation in the OpenAPI document, not two with the same id.
@router.head("/{audio_id}/content", response_class=Response, include_in_schema=False)
async def get_audio_content(
    audio_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> Response:
    """The stored media, with HTTP Range (206, If-Range), ETag and Last-Modified; with S3
    storage, a redirect (307) to a short-lived presigned URL. HEAD: the same headers, no body.
    410 `media_expired` after retention."""
    audio = await service.get_audio(session, user, audio_id)
    settings = services.settings
    if request.method == "GET" and _first_fetch(request.headers.get("range")):
        # One row per download, not per Range request a media player makes while seeking.
        await audit.record_for(session, user, audit.Action.download, "audio_file", audio.id)
    return await media_response(
        request,
        services.storage,
        audio,
        expires_s=settings.presigned_get_expires_s,
        public_url=settings.public_url,
    )


def _first_fetch(range_header: str | None) -> bool:
    return range_header is None or range_header.replace(" ", "").startswith("bytes=0-")


@router.delete("/{audio_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_audio(
    audio_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    background: BackgroundTasks,
) -> Response:
    """Delete the audio file, its transcriptions and its stored media."""
    outputs = await keys_of_audio(session, [audio_id])
    key = await service.delete_audio(session, user, audio_id)
    # Runs after the transaction committed (the session dependency ends before the response).
    background.add_task(delete_objects, services.storage, [key, *outputs.get(audio_id, [])])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/batch-delete", response_model=BatchDeleteOut)
async def batch_delete_audio(
    body: BatchDeleteIn,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    background: BackgroundTasks,
) -> object:
    """Delete many audio files; `failed` says which ids were not deleted and why."""
    ids = []
    for raw in body.ids:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue  # reported by delete_many
    outputs = await keys_of_audio(session, ids)
    result = await delete_many(session, user, body.ids)
    stored = [k for audio_id in result.deleted for k in outputs.get(audio_id, [])]
    background.add_task(delete_objects, services.storage, [*result.keys, *stored])
    return {"deleted": result.deleted, "failed": result.failed}
