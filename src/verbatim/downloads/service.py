"""Download requests: validate, rate-limit and queue (job row and queue job in one transaction)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.downloads import guard
from verbatim.downloads.schemas import DownloadCreate
from verbatim.errors import TooManyRequests, ValidationFailed
from verbatim.jobs.service import defer
from verbatim.models import Job, JobType, User
from verbatim.quotas import service as quotas
from verbatim.tenancy.scope import tenant_of
from verbatim.transcriptions import service as transcriptions

RATE_WINDOW = timedelta(hours=1)


async def request_download(
    session: AsyncSession, settings: Settings, user: User, body: DownloadCreate
) -> Job:
    try:
        url = guard.validate_url(body.url, settings.download_allow_networks)
    except guard.UrlRefused as exc:
        raise ValidationFailed(exc.message, code=exc.code) from exc
    transcribe = None
    if body.transcribe is not None:
        await transcriptions.check_request(
            settings, body.transcribe
        )  # 422 now, not after the download
        transcribe = body.transcribe.model_dump(mode="json")
    now = await _check_rate(session, settings, user)
    await quotas.check_job(session, settings, tenant_of(user), upload=True)
    job = Job(
        user_id=user.id,
        tenant_id=tenant_of(user),
        type=JobType.download,
        stage="queued",
        created_at=now,
        payload={"url": url, "transcribe": transcribe, "detail": {"url": url}},
    )
    session.add(job)
    await session.flush()
    from verbatim.downloads.tasks import fetch_download

    await defer(session, job, fetch_download)
    return job


async def _check_rate(session: AsyncSession, settings: Settings, user: User) -> datetime:
    """Refuse past VERBATIM_DOWNLOAD_RATE_PER_HOUR download jobs in the last hour.

    Counted in the database under a lock on the user's row, so concurrent requests on any number
    of API processes see each other's jobs. Every time comes from the database clock. Returns
    that clock's now, the new job's creation time.
    """
    await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    now = func.now()
    count, oldest, db_now = (
        await session.execute(
            select(func.count(), func.min(Job.created_at), now).where(
                Job.user_id == user.id,
                Job.type == JobType.download,
                Job.created_at > now - RATE_WINDOW,
            )
        )
    ).one()
    if count >= settings.download_rate_per_hour:
        retry_after = max(1, math.ceil((oldest + RATE_WINDOW - db_now).total_seconds()))
        raise TooManyRequests(
            f"At most {settings.download_rate_per_hour} downloads per hour; "
            f"try again in {retry_after} s",
            retry_after_s=retry_after,
        )
    result: datetime = db_now
    return result
