"""Serving stored media over HTTP: Range (206), ETag, Last-Modified, conditional requests."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from verbatim.audio.ingest import safe_filename
from verbatim.errors import NotFound, RangeNotSatisfiable
from verbatim.models import AudioFile
from verbatim.storage import ObjectNotFound, Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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


def content_disposition(filename: str, inline: bool = False) -> str:
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{safe_filename(filename)}\"; filename*=UTF-8''{quote(filename)}"


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


async def media_response(request: Request, storage: Storage, audio: AudioFile) -> Response:
    try:
        info = await asyncio.to_thread(storage.info, audio.storage_key)
    except ObjectNotFound as exc:
        raise NotFound("The media of this audio file is missing", code="media_missing") from exc
    etag = f'"{audio.sha256}"'
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(audio.created_at.astimezone(UTC), usegmt=True),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
        "Content-Disposition": content_disposition(audio.original_filename, inline=True),
    }
    if _not_modified(request, etag, audio):
        return Response(status_code=304, headers=headers)
    byte_range = parse_range(request.headers.get("range"), info.size)
    start, end = byte_range or (0, info.size - 1)
    headers["Content-Length"] = str(end - start + 1)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    body = storage.read_range(audio.storage_key, start, end)
    return StreamingResponse(body, status_code=status, media_type=audio.mime_type, headers=headers)
