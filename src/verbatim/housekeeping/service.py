"""Housekeeping of stored media, for the periodic tasks and `verbatim storage check`.

- cleanup: temporary files, the backend's partial writes, expired direct uploads (their
  multipart uploads aborted, staging objects deleted), staging leftovers, old exports;
- retention: media older than VERBATIM_MEDIA_RETENTION_DAYS is deleted, rows and transcripts kept;
- check: objects without rows and rows without objects.

Database first, storage after: rows change in a committed transaction, and only then are objects
deleted, so a failure leaves an orphan object (found by the check), never a row without media.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from verbatim.audio.batch import delete_objects
from verbatim.audit import service as audit
from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.models import (
    AudioFile,
    Tenant,
    TenantKind,
    Transcription,
    UploadSession,
    UploadStatus,
)
from verbatim.storage import (
    EXPORTS_PREFIX,
    MEDIA_PREFIX,
    STAGING_PREFIX,
    ListedObject,
    ObjectNotFound,
    Storage,
    StorageError,
)
from verbatim.uploads.service import parse_staging_key, remove_staged

log = structlog.get_logger(__name__)

# Objects younger than this may belong to a write whose row is not committed yet.
GRACE = timedelta(hours=1)
_BATCH = 100


@dataclass
class CleanupReport:
    tmp_files: int = 0
    partial_writes: int = 0
    expired_uploads: int = 0
    aborted_multipart: int = 0
    staging_objects: int = 0
    exports: int = 0


def _staged_at(key: str, reported: datetime) -> tuple[uuid.UUID | None, datetime]:
    """(upload id, creation time) of a staging key; other keys: the store's own timestamp."""
    parsed = parse_staging_key(key) if key.startswith(STAGING_PREFIX) else None
    return parsed if parsed is not None else (None, reported)


def _remove_old_tmp_files(settings: Settings, older_than: datetime) -> int:
    removed = 0
    if not settings.tmp_dir.is_dir():
        return 0
    for path in settings.tmp_dir.iterdir():
        try:
            if path.is_file() and datetime.fromtimestamp(path.stat().st_mtime, UTC) < older_than:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


async def cleanup(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    now: datetime | None = None,
) -> CleanupReport:
    now = now or datetime.now(UTC)
    report = CleanupReport()
    stale = now - timedelta(hours=settings.tmp_max_age_hours)
    report.tmp_files = await asyncio.to_thread(_remove_old_tmp_files, settings, stale)
    report.partial_writes = await asyncio.to_thread(storage.remove_partial, stale)
    report.expired_uploads = await _expire_uploads(sessionmaker, storage, now)
    multipart = await asyncio.to_thread(storage.list_multipart, "")
    staged = await asyncio.to_thread(lambda: list(storage.list_objects(STAGING_PREFIX)))
    # Sessions are read after the listing: an upload created before it is seen here, or is
    # young enough to be kept.
    pending = await _pending_uploads(sessionmaker, now)
    # Besides direct uploads, a put_file whose abort failed (storage went away) leaves parts.
    for upload in multipart:
        owner, created = _staged_at(upload.key, upload.initiated_at)
        if owner in pending and pending[owner] == upload.upload_id:
            continue
        if created > now - GRACE:
            continue
        await asyncio.to_thread(storage.abort_multipart, upload.key, upload.upload_id)
        report.aborted_multipart += 1
    for obj in staged:
        owner, created = _staged_at(obj.key, obj.modified_at)
        if owner in pending or created > now - GRACE:
            continue
        await asyncio.to_thread(storage.delete, obj.key)
        report.staging_objects += 1
    exports_kept = timedelta(seconds=max(2 * settings.presigned_get_expires_s, 3600))
    for obj in await asyncio.to_thread(lambda: list(storage.list_objects(EXPORTS_PREFIX))):
        if obj.modified_at < now - exports_kept:
            await asyncio.to_thread(storage.delete, obj.key)
            report.exports += 1
    log.info("storage_cleanup", **vars(report))
    return report


async def _expire_uploads(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, now: datetime
) -> int:
    count = 0
    while True:
        async with session_scope(sessionmaker) as session:
            uploads = list(
                await session.scalars(
                    select(UploadSession)
                    .where(
                        UploadSession.status == UploadStatus.pending,
                        UploadSession.expires_at < now,
                    )
                    .limit(_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for upload in uploads:
                await remove_staged(storage, upload)
                upload.status = UploadStatus.expired
                upload.error_code = "expired"
        count += len(uploads)
        if len(uploads) < _BATCH:
            return count


async def _pending_uploads(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> dict[uuid.UUID | None, str | None]:
    """Pending, unexpired uploads: id -> multipart upload id."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(UploadSession.id, UploadSession.multipart_upload_id).where(
                UploadSession.status == UploadStatus.pending, UploadSession.expires_at >= now
            )
        )
        return {row.id: row.multipart_upload_id for row in rows}


async def apply_retention(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    days: int | None,
    now: datetime | None = None,
) -> int:
    """Delete media older than `days`; rows and transcripts stay (marked media_deleted_at)."""
    if days is None:
        return 0
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=days)
    count = 0
    while True:
        async with session_scope(sessionmaker) as session:
            rows = list(
                await session.scalars(
                    select(AudioFile)
                    .where(AudioFile.media_deleted_at.is_(None), AudioFile.created_at < cutoff)
                    .order_by(AudioFile.created_at)
                    .limit(_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                row.media_deleted_at = now
            keys = [row.storage_key for row in rows]
        await delete_objects(storage, keys)  # committed: now the objects may go
        count += len(rows)
        if len(rows) < _BATCH:
            log.info("media_retention", deleted=count, days=days)
            return count


@dataclass(frozen=True)
class MissingMedia:
    audio_file_id: uuid.UUID
    storage_key: str
    has_transcriptions: bool


@dataclass
class CheckReport:
    rows_checked: int = 0
    objects_checked: int = 0
    orphan_objects: list[ListedObject] = field(default_factory=list)
    recent_orphans: list[ListedObject] = field(default_factory=list)  # within GRACE: skipped
    missing_media: list[MissingMedia] = field(default_factory=list)
    deleted_objects: int = 0
    marked_rows: int = 0
    transcoded_files: int = 0  # stored as Opus (VERBATIM_STORE_TRANSCODED)
    bytes_saved: int = 0  # their original sizes minus what is stored

    @property
    def consistent(self) -> bool:
        return not self.orphan_objects and not self.missing_media


def _list(storage: Storage, prefix: str) -> list[ListedObject]:
    return list(storage.list_objects(prefix))


async def check_storage(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    *,
    fix: bool = False,
    now: datetime | None = None,
    grace: timedelta = GRACE,
) -> CheckReport:
    """Media objects without a row, and rows whose media is gone.

    Rows are read before objects are listed: media is stored before its row commits, so a row
    seen here has its object by the time the listing runs; an object younger than `grace` may
    be waiting for its row and is only reported. With `fix`, orphan objects are deleted and rows
    without media are marked (media_deleted_at); no row is ever deleted.
    """
    now = now or datetime.now(UTC)
    report = CheckReport()
    has_transcriptions = exists().where(Transcription.audio_file_id == AudioFile.id)
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    AudioFile.id,
                    AudioFile.storage_key,
                    AudioFile.media_deleted_at,
                    has_transcriptions.label("has_transcriptions"),
                )
            )
        ).all()
        transcoded = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(AudioFile.size_bytes - AudioFile.stored_size_bytes), 0),
                ).where(
                    AudioFile.stored_size_bytes.is_not(None), AudioFile.media_deleted_at.is_(None)
                )
            )
        ).one()
        # Organisation media lives under `{tenant_id}/uploads/` (decision 0019).
        organisations = list(
            await session.scalars(select(Tenant.id).where(Tenant.kind == TenantKind.organisation))
        )
    report.transcoded_files, report.bytes_saved = int(transcoded[0]), int(transcoded[1])
    prefixes = [MEDIA_PREFIX, *(f"{tid}/uploads/" for tid in organisations)]
    objects: dict[str, ListedObject] = {}
    for prefix in prefixes:
        listed = await asyncio.to_thread(_list, storage, prefix)
        objects.update((obj.key, obj) for obj in listed)
    report.rows_checked, report.objects_checked = len(rows), len(objects)
    live = {row.storage_key for row in rows if row.media_deleted_at is None}
    for key, obj in sorted(objects.items()):
        if key not in live:
            recent = obj.modified_at > now - grace
            (report.recent_orphans if recent else report.orphan_objects).append(obj)
    for row in rows:
        if row.media_deleted_at is None and row.storage_key not in objects:
            report.missing_media.append(
                MissingMedia(row.id, row.storage_key, bool(row.has_transcriptions))
            )
    if fix:
        await _fix(sessionmaker, storage, report, now)
    return report


async def _fix(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    report: CheckReport,
    now: datetime,
) -> None:
    for obj in report.orphan_objects:
        try:
            await asyncio.to_thread(storage.delete, obj.key)
            report.deleted_objects += 1
        except StorageError as exc:
            log.warning("orphan_delete_failed", key=obj.key, error=exc.message)
    async with session_scope(sessionmaker) as session:
        for missing in report.missing_media:
            try:  # looked at again: it may have been written since the listing
                await asyncio.to_thread(storage.info, missing.storage_key)
                continue
            except ObjectNotFound:
                pass
            row = await session.get(AudioFile, missing.audio_file_id, with_for_update=True)
            if row is not None and row.media_deleted_at is None:
                row.media_deleted_at = now
                report.marked_rows += 1


async def purge_audit(
    sessionmaker: async_sessionmaker[AsyncSession], days: int | None, batch: int = 5000
) -> int:
    """Audit rows past the retention, a batch per transaction (the trigger lets only this
    transaction-local purge flag delete)."""
    if days is None:
        return 0
    total = 0
    while True:
        async with session_scope(sessionmaker) as session:
            deleted = await audit.purge_older_than(session, days, batch)
        total += deleted
        if deleted < batch:
            return total
