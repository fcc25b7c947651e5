"""Writing and reading audit rows.

`record` adds a row to the caller's session, so it commits (or rolls back) with the action it
describes. Actions that must be recorded although the request fails (a failed login, an
administrator's look into a tenant) pass a session that commits on its own.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audit import context
from verbatim.kit.pagination import KeysetPage, PageRequest, keyset_paginate
from verbatim.models import AuditLog, User
from verbatim.tenancy.scope import tenant_of

log = structlog.get_logger(__name__)


class Action(enum.StrEnum):
    login_ok = "auth.login"
    login_failed = "auth.login_failed"
    key_created = "api_key.created"
    key_revoked = "api_key.revoked"
    upload = "audio.upload"
    download = "audio.download"
    delete = "resource.delete"
    role_change = "member.role_changed"
    member_removed = "member.removed"
    member_left = "member.left"
    member_joined = "member.joined"
    ownership_transferred = "tenant.ownership_transferred"
    invite = "member.invited"
    tenant_created = "tenant.created"
    export_link = "export.link_created"
    admin_access = "admin.access"
    settings_change = "settings.changed"
    user_disabled = "user.disabled"


async def record(
    session: AsyncSession,
    action: Action,
    *,
    actor: uuid.UUID | None,
    tenant: uuid.UUID | None,
    target_type: str | None = None,
    target_id: object = None,
    details: dict[str, Any] | None = None,
    address: str | None = None,
) -> None:
    session.add(
        AuditLog(
            actor_user_id=actor,
            tenant_id=tenant,
            action=str(action),
            target_type=target_type,
            target_id=None if target_id is None else str(target_id)[:200],
            client_address=(address or context.client_address() or None),
            request_id=context.request_id(),
            details=details,
        )
    )
    await session.flush()


async def record_for(
    session: AsyncSession,
    user: User,
    action: Action,
    target_type: str,
    target_id: object,
    details: dict[str, Any] | None = None,
) -> None:
    """`record` for a caller acting in their active tenant."""
    await record(
        session,
        action,
        actor=user.id,
        tenant=tenant_of(user),
        target_type=target_type,
        target_id=target_id,
        details=details,
    )


async def list_entries(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    page: PageRequest,
    *,
    action: str | None = None,
    actor: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> KeysetPage:
    """Newest first, keyset pages; `tenant_id` None is every tenant (platform administrators)."""
    stmt = select(AuditLog)
    if tenant_id is not None:
        stmt = stmt.where(AuditLog.tenant_id == tenant_id)
    if action is not None:
        # "member." matches every member action; "auth.login" only that one.
        stmt = stmt.where(
            AuditLog.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditLog.action == action
        )
    if actor is not None:
        stmt = stmt.where(AuditLog.actor_user_id == actor)
    if since is not None:
        stmt = stmt.where(AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.created_at < until)
    return await keyset_paginate(session, stmt, page, AuditLog.created_at, AuditLog.id)


async def purge_older_than(session: AsyncSession, days: int, batch: int = 5000) -> int:
    """Retention: delete rows older than `days` (the only delete the trigger allows)."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    await session.execute(text("SET LOCAL verbatim.audit_purge = 'on'"))
    oldest = (
        select(AuditLog.id)
        .where(AuditLog.created_at < cutoff)
        .order_by(AuditLog.created_at)
        .limit(batch)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(AuditLog).where(AuditLog.id.in_(oldest)).execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.info("audit_purged", rows=count, cutoff=cutoff.isoformat())
    return count
