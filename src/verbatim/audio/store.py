"""Where the bytes of an ingest come from, and how they reach their final key.

Two kinds of source take the one ingest path (`service.ingest`):
- `ReceivedFile`: a temporary local file (a streamed upload, a download), put into storage;
- `StagedObject`: an object already in storage under a staging key (a direct upload), with a
  local copy for probing; it is copied (S3: a server-side copy; local: a hard link) to the final
  key. The staging object is left in place: the caller deletes it only after the database
  transaction committed, so a failed commit never strands a direct upload (completing it
  again finds its bytes where they were).
Either may be stored transcoded instead (lossless audio as Opus) when the settings ask for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog

from verbatim.audio.ingest import ReceivedFile
from verbatim.config import Settings
from verbatim.media.transcode import is_lossless, transcode_to_opus
from verbatim.models import AudioFile
from verbatim.storage import Storage, StorageError

log = structlog.get_logger(__name__)

_HASH_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class StagedObject:
    key: str  # where the bytes are now
    path: Path  # a local copy (owned by the caller; on local storage, the object itself)
    size: int
    sha256: str
    filename: str


Incoming = ReceivedFile | StagedObject


@dataclass(frozen=True)
class Transcode:
    """Store lossless uploads as Opus; temporary output goes to tmp_dir."""

    tmp_dir: Path
    bitrate_per_channel: int = 32_000


def transcode_from(settings: Settings) -> Transcode | None:
    return Transcode(settings.tmp_dir) if settings.store_transcoded == "opus" else None


def sha256_of(path: Path) -> tuple[str, int]:
    """(hex digest, size) of a file, read in chunks; run it in a thread."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def store_media(
    storage: Storage, incoming: Incoming, row: AudioFile, transcode: Transcode | None
) -> None:
    """Put the bytes under row.storage_key (atomically), transcoded if asked and lossless."""
    if transcode is not None and is_lossless(row.codec, row.has_video):
        out = transcode.tmp_dir / f"transcode-{uuid.uuid4().hex}.ogg"
        try:
            await asyncio.to_thread(
                transcode_to_opus, incoming.path, out, transcode.bitrate_per_channel
            )
            stored_size = out.stat().st_size
            await asyncio.to_thread(storage.put_file, out, row.storage_key, "audio/ogg")
        finally:
            out.unlink(missing_ok=True)
        row.stored_size_bytes = stored_size
        row.stored_mime_type = "audio/ogg; codecs=opus"
        log.info(
            "audio_stored_transcoded",
            audio_file_id=str(row.id),
            original_bytes=row.size_bytes,
            stored_bytes=stored_size,
            saved_bytes=row.size_bytes - stored_size,
        )
        return
    if isinstance(incoming, StagedObject):
        await asyncio.to_thread(storage.copy, incoming.key, row.storage_key, row.mime_type)
    else:
        await asyncio.to_thread(storage.put_file, incoming.path, row.storage_key, row.mime_type)
    row.stored_size_bytes = None
    row.stored_mime_type = None


async def discard(storage: Storage, incoming: Incoming) -> None:
    """Remove what is left of a local source. A staged object stays: its owner (the upload)
    deletes it after the commit (`delete_staged_object`)."""
    if isinstance(incoming, ReceivedFile):
        incoming.path.unlink(missing_ok=True)


async def delete_staged_object(storage: Storage, key: str) -> None:
    """Delete a staging object once the transaction that recorded its ingest committed; a
    failure is logged (housekeeping removes staging objects of finished uploads later)."""
    try:
        await asyncio.to_thread(storage.delete, key)
    except StorageError as exc:
        log.warning("staging_delete_failed", key=key, error=exc.message)
