"""Small HTTP helpers shared by endpoints and storage backends: Content-Disposition, absolute
URLs, and byte ranges (Range, If-Range, HEAD) for anything served from storage."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse
from starlette.requests import Request

from verbatim.errors import RangeNotSatisfiable
from verbatim.kit.filenames import display_name, safe_filename

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# RFC 5987 attr-char: what may stay unencoded in filename*.
_ATTR_CHARS = "!#$&+-.^_`|~"


def content_disposition(filename: str, inline: bool = False) -> str:
    """An RFC 6266 header: an ASCII fallback name and the cleaned name in UTF-8 (RFC 5987).
    Nothing from the name can end the header or the parameter: both forms are escaped."""
    kind = "inline" if inline else "attachment"
    shown = display_name(filename, default="file")
    return (
        f'{kind}; filename="{safe_filename(shown)}"; '
        f"filename*=UTF-8''{quote(shown, safe=_ATTR_CHARS)}"
    )


def absolute_url(request: Request, url: str, public_url: str | None = None) -> str:
    """Presigned URLs of the local backend are paths on this API; clients get full URLs."""
    if not url.startswith("/"):
        return url
    base = public_url or str(request.base_url)
    return base.rstrip("/") + url


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


def etag_matches(request: Request, etag: str) -> bool | None:
    """RFC 9110 13.1.2 If-None-Match (weak comparison: "W/" prefixes ignored, "*" matches);
    None when the request sent none."""
    header = request.headers.get("if-none-match")
    if header is None:
        return None
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag in tags or "*" in tags


def if_range_holds(request: Request, etag: str | None, modified_at: datetime | None) -> bool:
    """RFC 9110 13.1.5: a Range is honoured only if If-Range (when sent) still names this
    representation: the same strong ETag, or exactly its Last-Modified date."""
    condition = request.headers.get("if-range")
    if condition is None:
        return True
    condition = condition.strip()
    if condition.startswith(('"', "W/")):
        return etag is not None and not condition.startswith("W/") and condition == etag
    if modified_at is None:
        return False
    try:
        return parsedate_to_datetime(condition) == modified_at.replace(microsecond=0)
    except (TypeError, ValueError):
        return False


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def range_response(
    request: Request,
    read: Callable[[int, int], Iterator[bytes]],
    size: int,
    media_type: str,
    headers: dict[str, str],
    *,
    etag: str | None = None,
    modified_at: datetime | None = None,
) -> Response:
    """Bytes from `read(start, end)`: whole (200) or the one range asked for (206); a stale
    If-Range gets the whole file; HEAD gets the same headers and no body."""
    byte_range = None
    if if_range_holds(request, etag, modified_at):
        byte_range = parse_range(request.headers.get("range"), size)
    start, end = byte_range or (0, size - 1)
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(max(0, end - start + 1))}
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, media_type=media_type, headers=headers)
    return StreamingResponse(
        read(start, end), status_code=status, media_type=media_type, headers=headers
    )
