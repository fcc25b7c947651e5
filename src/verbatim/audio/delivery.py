"""Serving stored media over HTTP: Range (206), ETag, Last-Modified, conditional requests.

Conditional requests are answered (304) before storage is touched. Then a backend that prefers
it (S3) gets the client redirected to a short-lived presigned GET, which serves Range itself;
otherwise the bytes stream through the API.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from verbatim.errors import AppError, NotFound, RangeNotSatisfiable
from verbatim.kit.http import absolute_url, content_disposition
from verbatim.models import AudioFile
from verbatim.storage import ObjectNotFound, Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

__all__ = ["MediaExpired", "content_disposition", "media_response", "parse_range"]


class MediaExpired(AppError):
    status_code = 410
    code = "media_expired"
    message = "The media of this audio file was deleted (retention); its transcripts remain"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range (inclusive bounds), None for the whole file. Several ranges: whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        if header.strip().startswith("bytes=") and "," in header:
            return None
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    first, last = match.groups()
    if first == "" and last == "":
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _not_modified(request: Request, etag: str, audio: AudioFile) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return etag in tags or "*" in tags
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return audio.created_at.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def range_response(
    request: Request,
    storage: Storage,
    key: str,
    size: int,
    media_type: str,
    headers: dict[str, str],
) -> Response:
    """The object's bytes, whole (200) or the one range asked for (206)."""
    byte_range = parse_range(request.headers.get("range"), size)
    start, end = byte_range or (0, size - 1)
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    body = storage.read_range(key, start, end)
    return StreamingResponse(body, status_code=status, media_type=media_type, headers=headers)


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
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(audio.created_at.astimezone(UTC), usegmt=True),
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
    return range_response(request, storage, audio.storage_key, info.size, media_type, headers)
