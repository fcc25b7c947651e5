"""Deleting many audio files in one request.

Each id is deleted in its own savepoint, so one failure does not undo the others. Stored objects
are removed only after the transaction committed (by the caller): a failure then leaves an
orphan object, which `verbatim storage check` reports, never a row without its media.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audio.service import delete_audio
from verbatim.errors import AppError
from verbatim.models import User
from verbatim.storage import Storage, StorageError

log = structlog.get_logger(__name__)


@dataclass
class BatchDeleted:
    deleted: list[uuid.UUID] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # objects to remove once committed


async def delete_many(session: AsyncSession, user: User, ids: list[str]) -> BatchDeleted:
    result = BatchDeleted()
    for raw in dict.fromkeys(ids):  # each id once, in the order given
        try:
            audio_id = uuid.UUID(raw)
        except ValueError:
            result.failed.append({"id": raw, "code": "invalid_id", "message": "Not a UUID"})
            continue
        try:
            async with session.begin_nested():
                key = await delete_audio(session, user, audio_id)
        except AppError as exc:
            result.failed.append({"id": raw, "code": exc.code, "message": exc.message})
            continue
        result.deleted.append(audio_id)
        result.keys.append(key)
    return result


async def delete_objects(storage: Storage, keys: list[str]) -> None:
    """Remove stored objects after the rows are gone; a failure is logged, not raised."""
    for key in keys:
        try:
            await asyncio.to_thread(storage.delete, key)
        except StorageError as exc:
            log.warning("media_delete_failed", key=key, error=exc.message)
