"""Audio files: ingest (dedup per user), listing, reading and deleting, always for their owner."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audio.store import Incoming, Transcode, discard, store_media
from verbatim.audit import service as audit
from verbatim.config import Settings
from verbatim.errors import MediaTooLong, NotFound, UnsupportedMedia
from verbatim.jobs.service import mark_cancelled
from verbatim.kit.filenames import display_name, safe_filename
from verbatim.kit.pagination import KeysetPage, PageRequest, keyset_paginate
from verbatim.media.probe import NotMedia, ProbeResult
from verbatim.media.probe_pool import probe_isolated
from verbatim.metrics.instruments import record_ingest
from verbatim.models import AudioFile, Job, SourceType, User
from verbatim.models.job import TERMINAL
from verbatim.quotas import service as quotas
from verbatim.storage import Storage
from verbatim.tenancy.scope import storage_prefix, tenant_of, visible
from verbatim.webhooks import events as webhook_events

log = structlog.get_logger(__name__)


def storage_key_for(user: User, filename: str, now: datetime | None = None) -> str:
    """A key of its own for every row, never reused:
    `uploads/user_{id}/{YYYY}/{MM}/{random 128 bits}_{safe name}` in a personal tenant,
    `{tenant_id}/uploads/{YYYY}/{MM}/...` in an organisation (`tenancy.scope.storage_prefix`).

    Keys were `{sha256[:16]}_{name}` once: deleting a file and uploading the same bytes again
    before the deferred object delete ran gave the new row the old key, and the delete then
    removed the live object."""
    now = now or datetime.now(UTC)
    prefix = storage_prefix(user)
    return f"{prefix}{now:%Y}/{now:%m}/{uuid.uuid4().hex}_{safe_filename(filename)}"


async def probe_or_reject(path: Path) -> ProbeResult:
    """Probe in a child process (`media.probe_pool`): a crash there is a 422, not the API."""
    try:
        return await probe_isolated(path)
    except NotMedia as exc:
        raise UnsupportedMedia(details={"reason": str(exc)}) from exc


async def ingest(
    session: AsyncSession,
    storage: Storage,
    user: User,
    received: Incoming,
    *,
    source_type: SourceType = SourceType.upload,
    source_url: str | None = None,
    platform: str | None = None,
    title: str | None = None,
    transcode: Transcode | None = None,
    max_duration_s: float | None = None,
    settings: Settings | None = None,
) -> tuple[AudioFile, bool]:
    """Register received bytes: (the record, whether it was already in the user's library).

    The source (a temporary file, or a staged object) is always consumed: moved into storage,
    or removed. With `settings`, a new file is checked against the tenant's storage and
    uploads-per-hour quotas first (the tenant row stays locked until the caller commits).
    """
    try:
        media = await probe_or_reject(received.path)
        if max_duration_s is not None and media.duration and media.duration > max_duration_s:
            raise MediaTooLong(
                f"The media lasts {media.duration:.0f} s; the limit is {max_duration_s:.0f} s",
                details={"duration_s": media.duration, "max_duration_s": max_duration_s},
            )
        existing = await _by_checksum(session, user, received.sha256)
        record_ingest(source_type.value, received.size, duplicate=existing is not None)
        if existing is not None:
            if existing.media_deleted_at is not None:
                # Its media was removed (retention): the same bytes bring it back.
                await store_media(storage, received, existing, transcode)
                existing.media_deleted_at = None
            return existing, True
        if settings is not None:
            await quotas.check_job(
                session, settings, tenant_of(user), upload=True, adding_bytes=received.size
            )
        row = AudioFile(
            user_id=user.id,
            tenant_id=tenant_of(user),
            storage_key=storage_key_for(user, received.filename),
            original_filename=display_name(received.filename)[:255],
            size_bytes=received.size,
            sha256=received.sha256,
            mime_type=media.mime_type,
            container=media.container,
            codec=media.codec,
            duration=media.duration,
            sample_rate=media.sample_rate,
            channels=media.channels,
            has_video=media.has_video,
            source_type=source_type,
            source_url=source_url,
            platform=platform,
            title=title,
        )
        try:
            # A concurrent identical upload waits here on the unique index; the loser
            # returns the winner's row.
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError:
            winner = await _by_checksum(session, user, received.sha256)
            if winner is None:
                raise
            return winner, True
        await store_media(storage, received, row, transcode)
        await audit.record(
            session,
            audit.Action.upload,
            actor=user.id,
            tenant=row.tenant_id,
            target_type="audio_file",
            target_id=row.id,
            details={"size": row.size_bytes, "source": str(source_type)},
        )
        log.info("audio_ingested", audio_file_id=str(row.id), size=row.size_bytes)
        # In the transaction that commits the row: the message exists if and only if it does.
        await webhook_events.emit(session, user.id, "audio.created", audio_data(row))
        return row, False
    finally:
        await discard(storage, received)


def audio_data(row: AudioFile) -> dict[str, object]:
    return {
        "audio_file_id": str(row.id),
        "original_filename": row.original_filename,
        "size_bytes": row.size_bytes,
        "duration": row.duration,
        "sha256": row.sha256,
        "source_type": row.source_type.value,
        "source_url": row.source_url,
    }


async def _by_checksum(session: AsyncSession, user: User, sha256: str) -> AudioFile | None:
    return await session.scalar(
        # Dedup is per tenant: the same bytes twice in one library are one row.
        select(AudioFile).where(AudioFile.tenant_id == tenant_of(user), AudioFile.sha256 == sha256)
    )


def owned_audio(user: User) -> Select[AudioFile]:
    return select(AudioFile).where(visible(AudioFile, user))


async def get_audio(session: AsyncSession, user: User, audio_id: uuid.UUID) -> AudioFile:
    audio = await session.scalar(owned_audio(user).where(AudioFile.id == audio_id))
    if audio is None:
        raise NotFound("Audio file not found", code="audio_not_found")
    return audio


# What a list item shows (AudioFileOut): not the storage key nor the owner columns.
LIST_COLUMNS = (
    AudioFile.original_filename,
    AudioFile.size_bytes,
    AudioFile.sha256,
    AudioFile.mime_type,
    AudioFile.container,
    AudioFile.codec,
    AudioFile.duration,
    AudioFile.sample_rate,
    AudioFile.channels,
    AudioFile.has_video,
    AudioFile.source_type,
    AudioFile.source_url,
    AudioFile.platform,
    AudioFile.title,
    AudioFile.created_at,
    AudioFile.media_deleted_at,
    AudioFile.stored_size_bytes,
    AudioFile.stored_mime_type,
)


async def list_audio(
    session: AsyncSession,
    user: User,
    *,
    source_type: SourceType | None,
    page: PageRequest,
) -> KeysetPage:
    """Newest first, a keyset page at a time (ix_audio_file_user[_source]_created). Items
    are plain rows of LIST_COLUMNS (no ORM objects: a list is read-only, and building 50
    instances was a fifth of its CPU under load, issue 15)."""
    stmt: Select[Any] = select(  # type: ignore[assignment]  # SQLAlchemy's column tuple
        AudioFile.id, *LIST_COLUMNS
    ).where(visible(AudioFile, user))
    if source_type is not None:
        stmt = stmt.where(AudioFile.source_type == source_type)
    return await keyset_paginate(session, stmt, page, AudioFile.created_at, AudioFile.id)


async def delete_audio(session: AsyncSession, user: User, audio_id: uuid.UUID) -> str:
    """Delete the row (its transcriptions cascade) and cancel its unfinished jobs.

    Returns the storage key: the caller removes the object once the transaction committed, so
    a failed commit never leaves a row pointing at a missing object.
    """
    audio = await get_audio(session, user, audio_id)
    jobs = await session.scalars(
        select(Job)
        .where(Job.audio_file_id == audio.id, Job.status.not_in(TERMINAL))
        .with_for_update()
    )
    for job in jobs:
        await mark_cancelled(session, job)
    key = audio.storage_key
    await session.delete(audio)
    await session.flush()
    await audit.record_for(session, user, audit.Action.delete, "audio_file", audio_id)
    return key
