from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from verbatim.audio.delivery import upload_response
from verbatim.audio.schemas import UploadOut
from verbatim.deps import CurrentUser, ServicesDep, SessionDep
from verbatim.errors import error_response
from verbatim.kit.http import absolute_url
from verbatim.models import UploadSession
from verbatim.uploads import service
from verbatim.uploads.schemas import (
    MultipartOut,
    PartUrl,
    UploadCreate,
    UploadSessionOut,
)

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])


def _out(
    request: Request, upload: UploadSession, urls: service.UploadUrls, public_url: str | None
) -> UploadSessionOut:
    multipart = None
    if urls.parts is not None:
        assert upload.part_size is not None and upload.part_count is not None
        multipart = MultipartOut(
            part_size=upload.part_size,
            part_count=upload.part_count,
            parts=[
                PartUrl(
                    part_number=p.part_number,
                    size=p.size,
                    url=absolute_url(request, p.url, public_url),
                )
                for p in urls.parts
            ],
        )
    return UploadSessionOut(
        id=upload.id,
        status=upload.status,
        filename=upload.filename,
        size=upload.declared_size,
        content_type=upload.content_type,
        created_at=upload.created_at,
        expires_at=upload.expires_at,
        completed_at=upload.completed_at,
        audio_file_id=upload.audio_file_id,
        error_code=upload.error_code,
        url=absolute_url(request, urls.url, public_url) if urls.url else None,
        multipart=multipart,
        complete_url=f"/api/v1/uploads/{upload.id}/complete",
    )


@router.post(
    "",
    response_model=UploadSessionOut,
    status_code=status.HTTP_201_CREATED,
    responses={413: {"description": "file_too_large"}},
)
async def create_upload(
    body: UploadCreate,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> object:
    """Start a direct upload: PUT the file to `url`, or each part to its URL (multipart),
    then POST `complete_url`."""
    upload, urls = await service.create_upload(
        session,
        services.storage,
        services.settings,
        user,
        body.filename,
        body.size,
        body.content_type,
    )
    return _out(request, upload, urls, services.settings.public_url)


@router.get("/{upload_id}", response_model=UploadSessionOut)
async def get_upload(
    upload_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> object:
    """The upload's state; while pending, freshly signed URLs (valid until it expires)."""
    upload = await service.get_upload(session, user, upload_id)
    urls = await service.presign(services.storage, upload)
    return _out(request, upload, urls, services.settings.public_url)


@router.post(
    "/{upload_id}/complete",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": UploadOut, "description": "Already in the library (is_duplicate)"},
        409: {"description": "upload_incomplete, upload_aborted, upload_completed"},
        410: {"description": "upload_expired"},
        415: {"description": "unsupported_media"},
        422: {"description": "upload_size_mismatch"},
        503: {"description": "storage_unavailable"},
    },
)
async def complete_upload(
    upload_id: uuid.UUID, request: Request, user: CurrentUser, services: ServicesDep
) -> Response:
    """Check, hash and probe the uploaded object, and add it to the library.

    Takes the sessionmaker, not the request session: the service holds no connection while it
    downloads, hashes and probes, and commits its two short transactions itself."""
    try:
        audio, duplicate = await service.complete_upload(
            services.sessionmaker, services.storage, services.settings, user, upload_id
        )
    except service.UploadRejected as exc:
        # The rejection is already recorded (committed); the client gets its error.
        return error_response(request, exc.error)
    return upload_response(audio, duplicate)


@router.delete("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
async def abort_upload(
    upload_id: uuid.UUID, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> Response:
    """Abort a pending upload and remove what was uploaded so far."""
    await service.abort_upload(session, services.storage, user, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
