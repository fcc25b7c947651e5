"""Transcript exports through a short-lived presigned URL (`?presigned=true`).

The rendered export is stored under `exports/` by content (the same export twice is one object)
and a presigned GET is returned; housekeeping deletes exports once every URL to them expired.
With S3 the download then never touches the API; locally the URL is signed by this API.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from verbatim.audio.ingest import safe_filename
from verbatim.models import User
from verbatim.storage import EXPORTS_PREFIX, Storage
from verbatim.transcriptions.export import Rendered


@dataclass(frozen=True)
class ExportLink:
    url: str
    expires_at: datetime
    filename: str
    content_type: str


def _encode_and_hash(content: str | bytes) -> tuple[bytes, str]:
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    return data, hashlib.sha256(data).hexdigest()[:16]


async def presigned_export(
    storage: Storage,
    user: User,
    transcription_id: uuid.UUID,
    rendered: Rendered,
    expires_s: int,
) -> ExportLink:
    # Encoding and hashing a long transcript would hold the event loop: done in a thread.
    data, digest = await asyncio.to_thread(_encode_and_hash, rendered.content)
    key = (
        f"{EXPORTS_PREFIX}user_{user.id}/{transcription_id}/{digest}_"
        f"{safe_filename(rendered.filename)}"
    )
    await asyncio.to_thread(storage.put_bytes, key, data, rendered.media_type)
    url = await asyncio.to_thread(
        storage.presigned_get, key, expires_s, rendered.filename, rendered.media_type, False
    )
    return ExportLink(
        url=url,
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_s),
        filename=rendered.filename,
        content_type=rendered.media_type,
    )
