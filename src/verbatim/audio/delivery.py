"""Serving stored media over HTTP: Range (206), If-Range, ETag, Last-Modified, conditional
requests, HEAD; and the upload answer shared by the upload routes.

Conditional requests are answered (304) before storage is touched. Then a backend that prefers
it (S3) gets the client redirected to a short-lived presigned GET, which serves Range itself;
otherwise the bytes stream through the API. HEAD gets the same status and headers as GET
(the redirect included) and no body.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from email.utils import parsedate_to_datetime

from fastapi import Request, status
from fastapi.responses import RedirectResponse, Response

from verbatim.audio.schemas import AudioFileOut, UploadOut
from verbatim.errors import AppError, NotFound
from verbatim.kit.http import (
    absolute_url,
    content_disposition,
    etag_matches,
    http_date,
    range_response,
)
from verbatim.models import AudioFile
from verbatim.storage import ObjectNotFound, Storage

__all__ = ["MediaExpired", "content_disposition", "media_response", "upload_response"]


class MediaExpired(AppError):
    status_code = 410
    code = "media_expired"
    message = "The media of this audio file was deleted (retention); its transcripts remain"


def upload_response(audio: object, duplicate: bool) -> Response:
    """201 with the new record, or 200 with the one already in the library (is_duplicate)."""
    body = UploadOut.model_validate(
        {**AudioFileOut.model_validate(audio).model_dump(), "is_duplicate": duplicate}
    )
    return Response(
        body.model_dump_json(),
        status_code=status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED,
        media_type="application/json",
        headers={"Location": f"/api/v1/audio/{body.id}"},
    )


def _not_modified(request: Request, etag: str, audio: AudioFile) -> bool:
    matches = etag_matches(request, etag)
    if matches is not None:
        return matches
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return audio.created_at.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


async def media_response(
    request: Request,
    storage: Storage,
    audio: AudioFile,
    *,
    expires_s: int = 900,
    public_url: str | None = None,
) -> Response:
    if audio.media_deleted_at is not None:
        raise MediaExpired()
    etag = f'"{audio.sha256}"'
    media_type = audio.stored_mime_type or audio.mime_type
    modified_at = audio.created_at.astimezone(UTC)
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(modified_at),
        "Cache-Control": "private, max-age=3600",
        "Content-Disposition": content_disposition(audio.original_filename, inline=True),
    }
    if _not_modified(request, etag, audio):
        return Response(status_code=304, headers=headers)
    try:
        info = await asyncio.to_thread(storage.info, audio.storage_key)
    except ObjectNotFound as exc:
        raise NotFound("The media of this audio file is missing", code="media_missing") from exc
    if storage.prefers_redirect:
        url = await asyncio.to_thread(
            storage.presigned_get,
            audio.storage_key,
            expires_s,
            audio.original_filename,
            media_type,
        )
        # The redirect itself is never cached: its URL expires; the object it points to is.
        headers["Cache-Control"] = "private, no-store"
        return RedirectResponse(absolute_url(request, url, public_url), 307, headers=headers)
    key = audio.storage_key
    return range_response(
        request,
        lambda start, end: storage.read_range(key, start, end),
        info.size,
        media_type,
        headers,
        etag=etag,
        modified_at=modified_at,
    )
