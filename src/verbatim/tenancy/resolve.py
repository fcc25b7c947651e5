"""The active tenant of a request: `X-Tenant-ID`, else the API key's tenant, else the
caller's personal tenant; and the caller's role there, read on every request so a removed
member (and their API keys bound to the tenant) loses access at once."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audit import service as audit
from verbatim.errors import Forbidden, NotFound, ValidationFailed
from verbatim.models import Role, Tenant, TenantKind, TenantMember, TenantRole, User
from verbatim.tenancy.scope import Access, personal_access

HEADER = "X-Tenant-ID"


def parse_header(value: str | None) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationFailed(
            f"{HEADER} must be a tenant id (a UUID)", code="invalid_tenant_header"
        ) from exc


def tenant_not_found() -> NotFound:
    # The same answer whether the tenant exists or the caller is not a member: ids of other
    # organisations are not confirmed.
    return NotFound("Tenant not found", code="tenant_not_found")


async def membership(
    session: AsyncSession, user_id: uuid.UUID, tenant_id: uuid.UUID
) -> tuple[TenantRole, TenantKind] | None:
    row = (
        await session.execute(
            select(TenantMember.role, Tenant.kind)
            .join(Tenant, Tenant.id == TenantMember.tenant_id)
            .where(TenantMember.tenant_id == tenant_id, TenantMember.user_id == user_id)
        )
    ).first()
    return None if row is None else (TenantRole(row[0]), TenantKind(row[1]))


async def resolve(
    session: AsyncSession,
    user: User,
    requested: uuid.UUID | None,
    key_tenant: uuid.UUID | None,
    key_id: uuid.UUID | None = None,
) -> Access:
    """The caller's Access. `session` commits on its own (an administrator's look into a
    tenant is recorded even when the request then fails)."""
    if key_tenant is not None and requested is not None and requested != key_tenant:
        raise Forbidden("This API key is bound to another tenant", code="api_key_tenant_mismatch")
    tenant_id = requested or key_tenant or user.tenant_id
    if tenant_id == user.tenant_id:
        # The personal tenant: its owner, always (no query on the common path).
        access = personal_access(user)
        return Access(**{**access.__dict__, "api_key_id": key_id})
    found = await membership(session, user.id, tenant_id)
    if found is not None:
        role, kind = found
        return Access(
            user.id, tenant_id, role, personal=kind == TenantKind.personal, api_key_id=key_id
        )
    if user.role == Role.admin and key_id is None:
        # Admin override (seed 000): read-only, and every request is in the audit log.
        kind_value = await session.scalar(select(Tenant.kind).where(Tenant.id == tenant_id))
        if kind_value is None:
            raise tenant_not_found()
        await audit.record(
            session,
            audit.Action.admin_access,
            actor=user.id,
            tenant=tenant_id,
            target_type="tenant",
            target_id=tenant_id,
        )
        return Access(
            user.id,
            tenant_id,
            TenantRole.viewer,
            personal=False,  # an administrator sees every member's rows of the tenant
            admin_override=True,
        )
    raise tenant_not_found()
