"""Quotas per tenant: storage bytes, concurrent jobs, uploads per hour, audio minutes per month
per engine.

A tenant's own value (columns on `tenant`) overrides the VERBATIM_QUOTA_* default; 0 is
unlimited. A check locks the tenant row (`SELECT ... FOR UPDATE`) in the caller's transaction,
counts, and lets the caller insert its row before committing: two API processes at the boundary
queue on the lock and the second one counts the first one's row, so a limit is never passed.
With every quota unlimited nothing is locked or counted.

Refusals are `quota_exceeded` with the quota, its limit, what is used and when it resets: 429
(with Retry-After) for the rates that free up by themselves (concurrent jobs, uploads per
hour), 402 for the allowances that need a bigger plan or a deletion (storage, monthly minutes).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.errors import AppError
from verbatim.models import (
    AudioFile,
    Job,
    JobStatus,
    JobType,
    Tenant,
    Transcription,
    TranscriptionStatus,
)
from verbatim.models.transcription import RECONCILE_ENGINE

HOUR = timedelta(hours=1)
# Jobs a caller starts; follow-ups the service queues itself (indexing, scoring) do not count.
COUNTED_JOBS = (
    JobType.transcription,
    JobType.reprocess,
    JobType.download,
    JobType.collection_export,
)
CONCURRENCY_RETRY_S = 5


class QuotaExceeded(AppError):
    code = "quota_exceeded"

    def __init__(
        self,
        quota: str,
        limit: int,
        used: float,
        *,
        reset_at: datetime | None,
        status: int,
        message: str,
    ) -> None:
        details: dict[str, Any] = {
            "quota": quota,
            "limit": limit,
            "used": used,
            "reset_at": reset_at.isoformat() if reset_at else None,
        }
        headers = None
        if status == 429:
            wait = (
                CONCURRENCY_RETRY_S
                if reset_at is None
                else max(1, math.ceil((reset_at - datetime.now(UTC)).total_seconds()))
            )
            details["retry_after_s"] = wait
            headers = {"Retry-After": str(wait)}
        super().__init__(message, details=details, headers=headers)
        self.status_code = status


@dataclass(frozen=True)
class Limits:
    storage_bytes: int
    concurrent_jobs: int
    uploads_per_hour: int
    audio_minutes_per_month: int

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


def limits_of(settings: Settings, tenant: Tenant) -> Limits:
    def pick(own: int | None, default: int) -> int:
        return default if own is None else own

    return Limits(
        storage_bytes=pick(tenant.quota_storage_bytes, settings.quota_storage_bytes),
        concurrent_jobs=pick(tenant.quota_concurrent_jobs, settings.quota_concurrent_jobs),
        uploads_per_hour=pick(tenant.quota_uploads_per_hour, settings.quota_uploads_per_hour),
        audio_minutes_per_month=pick(
            tenant.quota_audio_minutes_per_month, settings.quota_audio_minutes_per_month
        ),
    )


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


# --- usage -----------------------------------------------------------------------------------


async def storage_used(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """Bytes of media the tenant stores (the stored size when transcoded)."""
    used = await session.scalar(
        select(
            func.coalesce(
                func.sum(func.coalesce(AudioFile.stored_size_bytes, AudioFile.size_bytes)), 0
            )
        ).where(AudioFile.tenant_id == tenant_id, AudioFile.media_deleted_at.is_(None))
    )
    return int(used or 0)


async def active_jobs(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                Job.tenant_id == tenant_id,
                Job.status.in_((JobStatus.pending, JobStatus.running)),
                Job.type.in_(COUNTED_JOBS),
            )
        )
        or 0
    )


async def audio_seconds_used(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    since: datetime,
    engine: str | None = None,
) -> dict[str, float]:
    """Seconds of audio transcribed (or queued) since `since`, per engine.

    Read from `transcription` rows, not from `usage_event` (which the engines write when a run
    completes and which feeds GET /usage and costs): queued and running transcriptions must
    count too, their minutes reserved when they are requested, so that concurrent requests
    cannot both spend the last minutes. A completed run's row and its usage event carry the
    same audio duration.
    """
    stmt = (
        select(
            Transcription.engine,
            func.coalesce(func.sum(func.coalesce(Transcription.duration, 0.0)), 0.0),
        )
        .where(
            Transcription.tenant_id == tenant_id,
            Transcription.created_at >= since,
            Transcription.engine != RECONCILE_ENGINE,  # its engines' runs count, not it
            # A failed or cancelled transcription gives its minutes back.
            Transcription.status.not_in(
                (TranscriptionStatus.failed, TranscriptionStatus.cancelled)
            ),
        )
        .group_by(Transcription.engine)
    )
    if engine is not None:
        stmt = stmt.where(Transcription.engine == engine)
    return {str(name): float(seconds) for name, seconds in await session.execute(stmt)}


# --- checks ----------------------------------------------------------------------------------


async def _locked_limits(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID
) -> Limits | None:
    """The tenant's limits with its row locked, or None when every quota is unlimited."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        return None
    if not any(limits_of(settings, tenant).as_dict().values()):
        return None
    tenant = await session.get(Tenant, tenant_id, with_for_update=True, populate_existing=True)
    return None if tenant is None else limits_of(settings, tenant)


async def check_job(
    session: AsyncSession,
    settings: Settings,
    tenant_id: uuid.UUID,
    *,
    upload: bool = False,
    audio_seconds: float | None = None,
    engine: str | None = None,
    adding_bytes: int | None = None,
) -> None:
    """Refuse the work about to be queued when it passes one of the tenant's quotas. Call it
    before inserting the job (or the upload's row) in the same transaction."""
    limits = await _locked_limits(session, settings, tenant_id)
    if limits is None:
        return
    now = datetime.now(UTC)
    if adding_bytes is not None and limits.storage_bytes:
        used = await storage_used(session, tenant_id)
        if used + adding_bytes > limits.storage_bytes:
            raise QuotaExceeded(
                "storage_bytes",
                limits.storage_bytes,
                used,
                reset_at=None,
                status=402,
                message=f"The tenant's storage quota ({limits.storage_bytes} bytes) is used up",
            )
    if upload and limits.uploads_per_hour:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(AudioFile.created_at)).where(
                    AudioFile.tenant_id == tenant_id, AudioFile.created_at > now - HOUR
                )
            )
        ).one()
        if count >= limits.uploads_per_hour:
            raise QuotaExceeded(
                "uploads_per_hour",
                limits.uploads_per_hour,
                count,
                reset_at=(oldest or now) + HOUR,
                status=429,
                message=f"At most {limits.uploads_per_hour} uploads per hour in this tenant",
            )
    if audio_seconds is None and adding_bytes is not None:
        return  # an upload queues no job
    if limits.concurrent_jobs:
        running = await active_jobs(session, tenant_id)
        if running >= limits.concurrent_jobs:
            raise QuotaExceeded(
                "concurrent_jobs",
                limits.concurrent_jobs,
                running,
                reset_at=None,
                status=429,
                message=f"At most {limits.concurrent_jobs} unfinished jobs in this tenant",
            )
    if audio_seconds is not None and limits.audio_minutes_per_month:
        used_s = sum(
            (await audio_seconds_used(session, tenant_id, month_start(now), engine)).values()
        )
        if used_s + audio_seconds > limits.audio_minutes_per_month * 60:
            raise QuotaExceeded(
                "audio_minutes_per_month",
                limits.audio_minutes_per_month,
                round(used_s / 60, 2),
                reset_at=next_month(now),
                status=402,
                message=(
                    f"The tenant's {limits.audio_minutes_per_month} audio minutes this month"
                    f" (engine {engine}) are used up"
                ),
            )


async def usage(session: AsyncSession, settings: Settings, tenant: Tenant) -> dict[str, Any]:
    now = datetime.now(UTC)
    per_engine = await audio_seconds_used(session, tenant.id, month_start(now))
    return {
        "limits": limits_of(settings, tenant).as_dict(),
        "storage_bytes": await storage_used(session, tenant.id),
        "active_jobs": await active_jobs(session, tenant.id),
        "audio_minutes_this_month": {k: round(v / 60, 2) for k, v in per_engine.items()},
        "month_resets_at": next_month(now),
    }
