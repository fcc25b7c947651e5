"""Platform administration: every route needs a password session of a `role: admin` user."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from verbatim.admin import service
from verbatim.audit import service as audit
from verbatim.audit.schemas import AuditPage
from verbatim.auth.deps import AdminUser
from verbatim.auth.schemas import UserOut
from verbatim.deps import SessionDep, SettingsDep
from verbatim.jobs.schemas import JobOut
from verbatim.kit.pagination import PageQuery
from verbatim.kit.schemas import CursorPage, RequestModel
from verbatim.models import TenantKind

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

_ADMIN: dict[int | str, dict[str, Any]] = {
    403: {"description": "admin_required, password_session_required"}
}


class AdminTenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: TenantKind
    created_at: datetime
    quota_storage_bytes: int | None
    quota_concurrent_jobs: int | None
    quota_uploads_per_hour: int | None
    quota_audio_minutes_per_month: int | None


class QuotasIn(RequestModel):
    """A tenant's own limits; null takes the VERBATIM_QUOTA_* default, 0 is unlimited. Only
    the fields sent change."""

    storage_bytes: int | None = Field(default=None, ge=0, le=2**62)
    concurrent_jobs: int | None = Field(default=None, ge=0, le=1_000_000)
    uploads_per_hour: int | None = Field(default=None, ge=0, le=1_000_000)
    audio_minutes_per_month: int | None = Field(default=None, ge=0, le=2**31 - 1)


@router.get("/tenants", response_model=CursorPage[AdminTenantOut], responses=_ADMIN)
async def list_tenants(
    admin: AdminUser, session: SessionDep, page: PageQuery, kind: TenantKind | None = None
) -> object:
    return (await service.list_tenants(session, page, kind)).response()


@router.patch("/tenants/{tenant_id}/quotas", response_model=AdminTenantOut, responses=_ADMIN)
async def set_quotas(
    tenant_id: uuid.UUID, body: QuotasIn, admin: AdminUser, session: SessionDep
) -> object:
    """Set a tenant's quotas (recorded as a settings change in the audit log)."""
    values = body.model_dump(exclude_unset=True)
    return await service.set_quotas(session, admin, tenant_id, values)


@router.get("/users", response_model=CursorPage[UserOut], responses=_ADMIN)
async def list_users(
    admin: AdminUser, session: SessionDep, page: PageQuery, active: bool | None = None
) -> object:
    return (await service.list_users(session, page, active)).response()


@router.post(
    "/users/{user_id}/disable",
    response_model=UserOut,
    responses={**_ADMIN, 409: {"description": "cannot_disable_self"}},
)
async def disable_user(user_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> object:
    """Disable an account: its tokens and API keys stop working at once."""
    return await service.disable_user(session, admin, user_id)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=_ADMIN)
async def get_any_job(job_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> object:
    """Any tenant's job (admin override, recorded in the audit log). Any other resource:
    send the tenant's id as `X-Tenant-ID` (read-only, every request recorded)."""
    return await service.get_any_job(session, admin, job_id)


@router.get("/usage", responses=_ADMIN)
async def system_usage(admin: AdminUser, session: SessionDep, settings: SettingsDep) -> object:
    """System-wide storage, users, tenants and audio minutes this month per engine."""
    return await service.system_usage(session, settings)


@router.get("/audit", response_model=AuditPage, responses=_ADMIN)
async def all_audit(
    admin: AdminUser,
    session: SessionDep,
    page: PageQuery,
    tenant_id: uuid.UUID | None = None,
    action: str | None = Query(None, max_length=64),
    actor: uuid.UUID | None = None,
) -> object:
    """Every tenant's audit log (or one), newest first."""
    result = await audit.list_entries(session, tenant_id, page, action=action, actor=actor)
    return result.response()
