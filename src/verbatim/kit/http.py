"""Small HTTP helpers shared by endpoints and storage backends."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

from verbatim.audio.ingest import safe_filename


def content_disposition(filename: str, inline: bool = False) -> str:
    """An RFC 6266 header: an ASCII fallback name and the exact name in UTF-8."""
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{safe_filename(filename)}\"; filename*=UTF-8''{quote(filename)}"


def absolute_url(request: Request, url: str, public_url: str | None = None) -> str:
    """Presigned URLs of the local backend are paths on this API; clients get full URLs."""
    if not url.startswith("/"):
        return url
    base = public_url or str(request.base_url)
    return base.rstrip("/") + url
