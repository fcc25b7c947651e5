"""Platform administrators: every tenant and user, disabling accounts, quotas, any job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audit import service as audit
from verbatim.config import Settings
from verbatim.errors import Conflict, NotFound
from verbatim.kit.pagination import KeysetPage, PageRequest, keyset_paginate
from verbatim.models import (
    ApiKey,
    AudioFile,
    Job,
    RefreshToken,
    Tenant,
    TenantKind,
    Transcription,
    User,
)
from verbatim.models.transcription import RECONCILE_ENGINE
from verbatim.quotas import service as quotas


async def list_tenants(
    session: AsyncSession, page: PageRequest, kind: TenantKind | None
) -> KeysetPage:
    stmt = select(Tenant)
    if kind is not None:
        stmt = stmt.where(Tenant.kind == kind)
    return await keyset_paginate(session, stmt, page, Tenant.created_at, Tenant.id)


async def list_users(session: AsyncSession, page: PageRequest, active: bool | None) -> KeysetPage:
    stmt = select(User)
    if active is not None:
        stmt = stmt.where(User.is_active == active)
    return await keyset_paginate(session, stmt, page, User.created_at, User.id)


async def disable_user(session: AsyncSession, admin: User, user_id: uuid.UUID) -> User:
    """Disable an account: every access token (token_version), refresh token and API key of
    it stops working at once."""
    if user_id == admin.id:
        raise Conflict("You cannot disable your own account", code="cannot_disable_self")
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("User not found", code="user_not_found")
    now = datetime.now(UTC)
    user.is_active = False
    user.token_version += 1
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    keys = await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    await audit.record(
        session,
        audit.Action.user_disabled,
        actor=admin.id,
        tenant=None,
        target_type="user",
        target_id=user.id,
        details={"api_keys_revoked": int(getattr(keys, "rowcount", 0) or 0)},
    )
    return user


async def set_quotas(
    session: AsyncSession, admin: User, tenant_id: uuid.UUID, values: dict[str, int | None]
) -> Tenant:
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        raise NotFound("Tenant not found", code="tenant_not_found")
    before = {name: getattr(tenant, f"quota_{name}") for name in values}
    for name, value in values.items():
        setattr(tenant, f"quota_{name}", value)
    await session.flush()
    await audit.record(
        session,
        audit.Action.settings_change,
        actor=admin.id,
        tenant=tenant.id,
        target_type="tenant_quotas",
        target_id=tenant.id,
        details={"before": before, "after": values},
    )
    return tenant


async def get_any_job(session: AsyncSession, admin: User, job_id: uuid.UUID) -> Job:
    """Any job of any tenant (admin override); the look is recorded."""
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound("Job not found", code="job_not_found")
    await audit.record(
        session,
        audit.Action.admin_access,
        actor=admin.id,
        tenant=job.tenant_id,
        target_type="job",
        target_id=job.id,
    )
    return job


async def system_usage(session: AsyncSession, settings: Settings) -> dict[str, Any]:
    now = datetime.now(UTC)
    month = quotas.month_start(now)
    storage = await session.scalar(
        select(func.coalesce(func.sum(AudioFile.size_bytes), 0)).where(
            AudioFile.media_deleted_at.is_(None)
        )
    )
    per_engine = await session.execute(
        select(Transcription.engine, func.sum(func.coalesce(Transcription.duration, 0)))
        .where(Transcription.created_at >= month, Transcription.engine != RECONCILE_ENGINE)
        .group_by(Transcription.engine)
    )
    counts = {
        "tenants": await session.scalar(select(func.count()).select_from(Tenant)),
        "users": await session.scalar(select(func.count()).select_from(User)),
    }
    return {
        "storage_bytes": int(storage or 0),
        "audio_minutes_this_month": {
            str(engine): round(float(seconds or 0) / 60, 2) for engine, seconds in per_engine
        },
        **{k: int(v or 0) for k, v in counts.items()},
    }
