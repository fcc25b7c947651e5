"""Direct uploads: presigned URLs to a staging key, then the upload's own ingest path.

The client PUTs the bytes straight to storage (S3, or this API signing for the local backend),
then asks to complete: the server checks the object is whole and has the declared size, hashes
it by streaming, probes it and hands it to `audio.service.ingest` like any upload (415, dedup per
user, the user's folder key). A rejected upload (wrong size, not media, expired) has its staging
bytes removed at once and is recorded as aborted or expired; an incomplete one stays pending.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

import structlog
from sqlalchemy import Select, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from verbatim.audio.service import ingest
from verbatim.audio.store import StagedObject, delete_staged_object, sha256_of, transcode_from
from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.errors import AppError, Conflict, NotFound, PayloadTooLarge, UnsupportedMedia
from verbatim.kit.filenames import clean_text, display_name
from verbatim.media.probe_pool import MediaTooShort, ProbeFailed
from verbatim.models import AudioFile, SourceType, UploadSession, UploadStatus, User
from verbatim.quotas import service as quotas
from verbatim.storage import (
    STAGING_PREFIX,
    ObjectNotFound,
    PartInfo,
    Storage,
    StorageError,
    local_copy,
)
from verbatim.storage.put_checks import register_put_check
from verbatim.tenancy.scope import tenant_of, visible

if TYPE_CHECKING:
    from verbatim.services import Services

log = structlog.get_logger(__name__)

MIB = 1024 * 1024
MAX_PARTS = 10_000


class UploadExpired(AppError):
    status_code = 410
    code = "upload_expired"
    message = "The upload expired before it was completed; start a new one"


class UploadIncomplete(Conflict):
    code = "upload_incomplete"
    message = "Not all of the file has been uploaded yet"


class UploadSizeMismatch(AppError):
    status_code = 422
    code = "upload_size_mismatch"
    message = "The uploaded object does not have the declared size"


class UploadRejected(Exception):
    """The upload was recorded as failed (commit it), and the client gets `error`."""

    def __init__(self, error: AppError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class PartPlan:
    part_number: int
    size: int
    url: str


@dataclass(frozen=True)
class UploadUrls:
    url: str | None = None
    parts: list[PartPlan] | None = None


def staging_key(upload_id: uuid.UUID, created_at: datetime) -> str:
    """`staging/{created}_{id}`: the time in the key lets housekeeping judge its age before
    the session row is committed, whatever timestamps the store itself reports."""
    return f"{STAGING_PREFIX}{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}_{upload_id}"


def parse_staging_key(key: str) -> tuple[uuid.UUID, datetime] | None:
    stamp, _, upload_id = key.removeprefix(STAGING_PREFIX).partition("_")
    try:
        created = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return uuid.UUID(upload_id), created
    except ValueError:
        return None


def part_size_for(size: int, configured: int) -> int:
    """The configured size, or more (whole MiB) when the file would need over 10,000 parts."""
    needed = math.ceil(size / MAX_PARTS)
    return max(configured, math.ceil(needed / MIB) * MIB)


def owned_uploads(user: User) -> Select[UploadSession]:
    return select(UploadSession).where(visible(UploadSession, user))


async def get_upload(
    session: AsyncSession, user: User, upload_id: uuid.UUID, *, lock: bool = False
) -> UploadSession:
    stmt = owned_uploads(user).where(UploadSession.id == upload_id)
    upload = await session.scalar(stmt.with_for_update() if lock else stmt)
    if upload is None:
        raise NotFound("Upload not found", code="upload_not_found")
    return upload


async def create_upload(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    user: User,
    filename: str,
    size: int,
    content_type: str | None,
) -> tuple[UploadSession, UploadUrls]:
    if size > settings.direct_upload_max_bytes:
        raise PayloadTooLarge(details={"max_bytes": settings.direct_upload_max_bytes})
    # Refused now rather than after the bytes were sent (checked again when completed).
    await quotas.check_job(session, settings, tenant_of(user), upload=True, adding_bytes=size)
    now = datetime.now(UTC)
    upload = UploadSession(
        id=uuid.uuid4(),
        user_id=user.id,
        tenant_id=tenant_of(user),
        filename=display_name(filename),
        declared_size=size,
        content_type=(clean_text(content_type)[:255] or None) if content_type else None,
        status=UploadStatus.pending,
        expires_at=now + timedelta(seconds=settings.upload_expires_s),
        created_at=now,
    )
    upload.staging_key = staging_key(upload.id, now)
    if size > settings.multipart_threshold_bytes:
        upload.part_size = part_size_for(size, settings.multipart_part_size_bytes)
        upload.part_count = math.ceil(size / upload.part_size)
        upload.multipart_upload_id = await asyncio.to_thread(
            storage.create_multipart, upload.staging_key
        )
    session.add(upload)
    await session.flush()
    log.info("upload_created", upload_id=str(upload.id), size=size, parts=upload.part_count)
    return upload, await presign(storage, upload)


async def presign(storage: Storage, upload: UploadSession) -> UploadUrls:
    """Fresh URLs for a pending upload, valid until the upload expires."""
    remaining = int((upload.expires_at - datetime.now(UTC)).total_seconds())
    if upload.status is not UploadStatus.pending or remaining <= 0:
        return UploadUrls()
    if upload.multipart_upload_id is None:
        url = await asyncio.to_thread(
            storage.presigned_put, upload.staging_key, remaining, upload.declared_size
        )
        return UploadUrls(url=url)
    assert upload.part_size is not None and upload.part_count is not None
    part_size, part_count, upload_id = (
        upload.part_size,
        upload.part_count,
        upload.multipart_upload_id,
    )

    def sign_all() -> list[PartPlan]:
        plans = []
        for number in range(1, part_count + 1):
            size = min(part_size, upload.declared_size - (number - 1) * part_size)
            url = storage.presigned_part(
                upload.staging_key, upload_id, number, remaining, part_size
            )
            plans.append(PartPlan(number, size, url))
        return plans

    return UploadUrls(parts=await asyncio.to_thread(sign_all))


async def complete_upload(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    settings: Settings,
    user: User,
    upload_id: uuid.UUID,
) -> tuple[AudioFile, bool]:
    """(the audio file, whether it was already in the library). Raises UploadRejected.

    No connection and no row lock is held while the object is assembled, downloaded, hashed
    and probed (up to 5 GiB): the upload is read in one short transaction, the work runs with
    none, and the result is written in a second short one (`ingest`, then the upload row,
    locked only there). A rejection is recorded in a short transaction of its own. Two
    concurrent completes may both do the work; the unique (user, checksum) index and the
    final re-check of the upload row make the second one answer the first one's result.
    """
    async with session_scope(sessionmaker) as session:
        upload = await get_upload(session, user, upload_id)
        settled = await _settled(session, upload)
    if settled is not None:
        return settled
    try:
        if datetime.now(UTC) >= upload.expires_at:
            await _reject(sessionmaker, storage, upload, UploadExpired(), UploadStatus.expired)
        if upload.multipart_upload_id is not None:
            await _complete_parts(sessionmaker, storage, upload)
        try:
            info = await asyncio.to_thread(storage.info, upload.staging_key)
        except ObjectNotFound as exc:
            raise UploadIncomplete("Nothing has been uploaded to this URL yet") from exc
        if info.size != upload.declared_size:
            await _reject(sessionmaker, storage, upload, _mismatch(upload.declared_size, info.size))
        async with local_copy(storage, upload.staging_key) as path:
            sha256, size = await asyncio.to_thread(sha256_of, path)
            if size != upload.declared_size:  # changed since: a client still writing to the URL
                await _reject(sessionmaker, storage, upload, _mismatch(upload.declared_size, size))
            staged = StagedObject(upload.staging_key, path, size, sha256, upload.filename)
            try:
                # Probes before its first statement: the connection is taken only after.
                async with session_scope(sessionmaker) as session:
                    audio, duplicate = await ingest(
                        session,
                        storage,
                        user,
                        staged,
                        source_type=SourceType.presigned,
                        transcode=transcode_from(settings),
                        settings=settings,
                    )
                    delete_staging_after_commit(session, storage, upload.staging_key)
                    return await _finish(session, user, upload.id, audio, duplicate)
            except (UnsupportedMedia, MediaTooShort, ProbeFailed) as exc:
                await _reject(sessionmaker, storage, upload, exc)
    except (UploadIncomplete, StorageError):
        # A concurrent complete of the same upload may have won (and moved the object).
        async with session_scope(sessionmaker) as session:
            settled = await _settled(session, await get_upload(session, user, upload_id))
        if settled is not None:
            return settled
        raise


async def _settled(session: AsyncSession, upload: UploadSession) -> tuple[AudioFile, bool] | None:
    """The result of an upload that is no longer pending (or the error it now gets); None
    while it is pending."""
    if upload.status is UploadStatus.completed:
        audio = await session.get(AudioFile, upload.audio_file_id) if upload.audio_file_id else None
        if audio is None:
            raise Conflict(
                "The upload was completed and its audio deleted since", code="upload_completed"
            )
        return audio, True
    if upload.status is UploadStatus.expired:
        raise UploadExpired()
    if upload.status is UploadStatus.aborted:
        raise Conflict("The upload was aborted", code="upload_aborted")
    return None


async def _finish(
    session: AsyncSession, user: User, upload_id: uuid.UUID, audio: AudioFile, duplicate: bool
) -> tuple[AudioFile, bool]:
    """Mark the upload completed, in ingest's transaction; the row is locked only here."""
    upload = await get_upload(session, user, upload_id, lock=True)
    if upload.status is UploadStatus.completed:
        settled = await _settled(session, upload)
        assert settled is not None
        return settled
    # Aborted while it was being completed: the bytes are in the library all the same.
    upload.status = UploadStatus.completed
    upload.error_code = None
    upload.audio_file_id = audio.id
    upload.completed_at = datetime.now(UTC)
    log.info("upload_completed", upload_id=str(upload.id), audio_file_id=str(audio.id))
    return audio, duplicate


# --- the staging object is deleted only once the completion is committed --------------------


def delete_staging_after_commit(session: AsyncSession, storage: Storage, key: str) -> None:
    """Delete the staging object once this session commits, never before: if the commit
    fails, the upload is still pending and its bytes still there, so completing it again
    works (it used to answer 409 `upload_incomplete` forever). A rollback cancels it.

    The hook runs inside the commit (SQLAlchemy's greenlet), after the database committed;
    `await_only` awaits the delete there without blocking the event loop, so the commit
    returns once the staging object is gone (a failure is only logged)."""
    sync_session = session.sync_session

    def committed(_: Session) -> None:
        event.remove(sync_session, "after_rollback", rolled_back)
        try:
            await_only(delete_staged_object(storage, key))
        except Exception:  # never fail a commit that happened; housekeeping retries
            log.exception("staging_delete_failed", key=key)

    def rolled_back(_: Session) -> None:
        event.remove(sync_session, "after_commit", committed)

    event.listen(sync_session, "after_commit", committed, once=True)
    event.listen(sync_session, "after_rollback", rolled_back, once=True)


# --- presigned PUTs after the upload ended are refused (local backend) ------------------------


async def check_staging_put(services: Services, key: str) -> None:
    """A PUT to a staging key is accepted only while its upload is pending: bytes sent after
    completion or abort would be orphans until housekeeping found them."""
    parsed = parse_staging_key(key)
    if parsed is None:
        raise NotFound("No such upload", code="upload_not_found")
    async with services.sessionmaker() as session:
        upload = await session.get(UploadSession, parsed[0])
        state = None if upload is None else (upload.status, upload.expires_at)
    if state is None:
        raise NotFound("No such upload", code="upload_not_found")
    status, expires_at = state
    if status is UploadStatus.completed:
        raise Conflict("The upload is already completed", code="upload_completed")
    if status is UploadStatus.aborted:
        raise Conflict("The upload was aborted", code="upload_aborted")
    if status is UploadStatus.expired or datetime.now(UTC) >= expires_at:
        raise UploadExpired()


register_put_check(STAGING_PREFIX, check_staging_put)


async def _complete_parts(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, upload: UploadSession
) -> None:
    """Assemble the parts into the staging object; it appears only whole."""
    assert upload.multipart_upload_id is not None and upload.part_count is not None
    try:
        parts = await asyncio.to_thread(
            storage.list_parts, upload.staging_key, upload.multipart_upload_id
        )
    except ObjectNotFound:
        # Gone from the store: completed by an earlier attempt whose transaction was rolled
        # back (the object is there), or aborted behind our back.
        if await _exists(storage, upload.staging_key):
            return
        await _reject(
            sessionmaker,
            storage,
            upload,
            Conflict("The upload was aborted", code="upload_aborted"),
        )
    expected = set(range(1, upload.part_count + 1))
    received = {p.part_number for p in parts}
    missing = sorted(expected - received)
    if missing:
        raise UploadIncomplete(details={"missing_parts": missing[:100]})
    total = sum(p.size for p in parts if p.part_number in expected)
    if total != upload.declared_size or received - expected:
        await _reject(sessionmaker, storage, upload, _mismatch(upload.declared_size, total))
    chosen: list[PartInfo] = [p for p in parts if p.part_number in expected]
    await asyncio.to_thread(
        storage.complete_multipart, upload.staging_key, upload.multipart_upload_id, chosen
    )


async def _exists(storage: Storage, key: str) -> bool:
    try:
        await asyncio.to_thread(storage.info, key)
    except ObjectNotFound:
        return False
    return True


def _mismatch(declared: int, actual: int) -> UploadSizeMismatch:
    return UploadSizeMismatch(
        f"Declared {declared} bytes, uploaded {actual}",
        details={"declared_size": declared, "uploaded_size": actual},
    )


async def _reject(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    upload: UploadSession,
    error: AppError,
    status: UploadStatus = UploadStatus.aborted,
) -> NoReturn:
    """Remove the staged bytes, record why (committed at once, in a short transaction of its
    own; only a pending upload changes), and raise UploadRejected (always)."""
    await remove_staged(storage, upload)
    async with session_scope(sessionmaker) as session:
        await session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload.id, UploadSession.status == UploadStatus.pending)
            .values(status=status, error_code=error.code)
        )
    log.info("upload_rejected", upload_id=str(upload.id), code=error.code)
    raise UploadRejected(error)


async def remove_staged(storage: Storage, upload: UploadSession) -> None:
    """Abort the multipart upload and delete the staging object; failures only logged
    (housekeeping retries them)."""
    try:
        if upload.multipart_upload_id is not None:
            await asyncio.to_thread(
                storage.abort_multipart, upload.staging_key, upload.multipart_upload_id
            )
        await asyncio.to_thread(storage.delete, upload.staging_key)
    except StorageError as exc:
        log.warning("staging_cleanup_failed", upload_id=str(upload.id), error=exc.message)


async def abort_upload(
    session: AsyncSession, storage: Storage, user: User, upload_id: uuid.UUID
) -> None:
    upload = await get_upload(session, user, upload_id, lock=True)
    if upload.status is UploadStatus.completed:
        raise Conflict("The upload is already completed", code="upload_completed")
    if upload.status is UploadStatus.pending:
        await remove_staged(storage, upload)
        upload.status = UploadStatus.aborted
        upload.error_code = "aborted_by_client"
