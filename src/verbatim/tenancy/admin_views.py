"""What a tenant's owners and admins see: every job of the tenant, usage and storage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from verbatim.config import Settings
from verbatim.kit.pagination import KeysetPage, PageRequest, keyset_paginate
from verbatim.models import AudioFile, Job, JobStatus, JobType, Transcription, User
from verbatim.models.transcription import RECONCILE_ENGINE
from verbatim.quotas import service as quotas
from verbatim.tenancy.service import manager_of

_JOB_COLUMNS = (
    Job.user_id,
    Job.type,
    Job.status,
    Job.progress,
    Job.stage,
    Job.error_code,
    Job.audio_file_id,
    Job.transcription_id,
    Job.created_at,
    Job.started_at,
    Job.finished_at,
)


async def tenant_jobs(
    session: AsyncSession,
    user: User,
    tenant_id: uuid.UUID,
    *,
    page: PageRequest,
    status: JobStatus | None,
    type: JobType | None,
    member: uuid.UUID | None,
) -> KeysetPage:
    await manager_of(session, user, tenant_id)
    stmt = select(Job).options(load_only(*_JOB_COLUMNS)).where(Job.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if type is not None:
        stmt = stmt.where(Job.type == type)
    if member is not None:
        stmt = stmt.where(Job.user_id == member)
    return await keyset_paginate(session, stmt, page, Job.created_at, Job.id)


async def tenant_usage(
    session: AsyncSession, settings: Settings, user: User, tenant_id: uuid.UUID
) -> dict[str, Any]:
    found = await manager_of(session, user, tenant_id)
    result = await quotas.usage(session, settings, found.tenant)
    month = quotas.month_start(datetime.now(UTC))
    storage = dict(
        (
            await session.execute(
                select(AudioFile.user_id, func.sum(AudioFile.size_bytes))
                .where(AudioFile.tenant_id == tenant_id, AudioFile.media_deleted_at.is_(None))
                .group_by(AudioFile.user_id)
            )
        ).all()
    )
    minutes = dict(
        (
            await session.execute(
                select(Transcription.user_id, func.sum(func.coalesce(Transcription.duration, 0)))
                .where(
                    Transcription.tenant_id == tenant_id,
                    Transcription.created_at >= month,
                    Transcription.engine != RECONCILE_ENGINE,
                )
                .group_by(Transcription.user_id)
            )
        ).all()
    )
    members = sorted(set(storage) | set(minutes), key=str)
    result["members"] = [
        {
            "user_id": str(uid),
            "storage_bytes": int(storage.get(uid) or 0),
            "audio_minutes_this_month": round(float(minutes.get(uid) or 0) / 60, 2),
        }
        for uid in members
    ]
    return result
