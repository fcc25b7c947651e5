"""Organisations: create, invite, accept, members and roles, leave, transfer ownership.

Rules (decision 0019):
- A personal tenant has exactly one member, its owner; it cannot be joined, left or shared.
- Owners and admins manage members; only an owner touches another owner (and an owner is
  made only by a transfer). The last owner can neither leave nor be demoted or removed.
- Membership changes lock the tenant row, so two concurrent changes cannot both remove the
  last owner.
- A member who leaves or is removed loses access at the next request (the role is read per
  request) and their API keys bound to the tenant are revoked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audit import service as audit
from verbatim.config import Settings
from verbatim.errors import Conflict, Forbidden, NotFound
from verbatim.models import (
    ApiKey,
    Invitation,
    Tenant,
    TenantKind,
    TenantMember,
    TenantRole,
    User,
)
from verbatim.tenancy.resolve import tenant_not_found
from verbatim.tenancy.scope import MANAGERS, access_of

log = structlog.get_logger(__name__)

INVITE_AUDIENCE = "verbatim-invitation"


@dataclass(frozen=True)
class Membership:
    tenant: Tenant
    role: TenantRole


async def member_of(
    session: AsyncSession, user: User, tenant_id: uuid.UUID, *, lock: bool = False
) -> Membership:
    """The caller's membership of `tenant_id` (404 `tenant_not_found` when none). A request
    made with an API key bound to another tenant does not reach this one."""
    access = access_of(user)
    if access.api_key_id is not None and access.tenant_id != tenant_id:
        raise tenant_not_found()
    stmt = select(Tenant).where(Tenant.id == tenant_id)
    if lock:
        stmt = stmt.with_for_update()
    tenant = await session.scalar(stmt)
    role = await session.scalar(
        select(TenantMember.role).where(
            TenantMember.tenant_id == tenant_id, TenantMember.user_id == user.id
        )
    )
    if tenant is None or role is None:
        raise tenant_not_found()
    return Membership(tenant, TenantRole(role))


async def manager_of(
    session: AsyncSession, user: User, tenant_id: uuid.UUID, *, lock: bool = False
) -> Membership:
    found = await member_of(session, user, tenant_id, lock=lock)
    if found.role not in MANAGERS:
        raise Forbidden("This needs an owner or admin of the tenant", code="tenant_admin_required")
    return found


def _organisation(found: Membership) -> None:
    if found.tenant.kind != TenantKind.organisation:
        raise Conflict(
            "A personal tenant has one member and cannot be shared", code="personal_tenant"
        )


async def create_organisation(session: AsyncSession, user: User, name: str) -> Tenant:
    tenant = Tenant(name=name, kind=TenantKind.organisation)
    session.add(tenant)
    await session.flush()
    session.add(TenantMember(tenant_id=tenant.id, user_id=user.id, role=TenantRole.owner))
    await session.flush()
    await audit.record(
        session,
        audit.Action.tenant_created,
        actor=user.id,
        tenant=tenant.id,
        target_type="tenant",
        target_id=tenant.id,
        details={"name": name},
    )
    return tenant


async def my_tenants(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Tenant, TenantMember.role)
        .join(TenantMember, TenantMember.tenant_id == Tenant.id)
        .where(TenantMember.user_id == user.id)
        .order_by(Tenant.kind.desc(), Tenant.created_at, Tenant.id)
    )
    return [tenant_out(tenant, TenantRole(role)) for tenant, role in rows]


def tenant_out(tenant: Tenant, role: TenantRole | None) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "kind": tenant.kind,
        "role": role,
        "created_at": tenant.created_at,
    }


async def get_tenant(session: AsyncSession, user: User, tenant_id: uuid.UUID) -> dict[str, Any]:
    found = await member_of(session, user, tenant_id)
    return tenant_out(found.tenant, found.role)


async def list_members(
    session: AsyncSession, user: User, tenant_id: uuid.UUID
) -> list[dict[str, Any]]:
    await member_of(session, user, tenant_id)
    rows = await session.execute(
        select(TenantMember.user_id, User.email, TenantMember.role, TenantMember.created_at)
        .join(User, User.id == TenantMember.user_id)
        .where(TenantMember.tenant_id == tenant_id)
        .order_by(TenantMember.created_at, TenantMember.user_id)
    )
    return [
        {"user_id": uid, "email": email, "role": role, "joined_at": joined}
        for uid, email, role, joined in rows
    ]


# --- invitations ---------------------------------------------------------------------------


def _invite_key(settings: Settings) -> str:
    return "invitation:" + settings.resolved_secret_key()


def invitation_token(settings: Settings, invitation: Invitation) -> str:
    """A signed token naming the invitation, valid until it expires (JWT, HS256)."""
    return jwt.encode(
        {
            "aud": INVITE_AUDIENCE,
            "inv": str(invitation.id),
            "exp": int(invitation.expires_at.timestamp()),
        },
        _invite_key(settings),
        algorithm="HS256",
    )


def _invalid_invitation() -> NotFound:
    return NotFound("Invitation not found, expired or already used", code="invitation_invalid")


async def invite(
    session: AsyncSession,
    settings: Settings,
    user: User,
    tenant_id: uuid.UUID,
    email: str,
    role: TenantRole,
) -> tuple[Invitation, str]:
    found = await manager_of(session, user, tenant_id)
    _organisation(found)
    if role == TenantRole.owner:
        raise Forbidden(
            "An owner is made by transferring ownership, not by invitation",
            code="role_not_allowed",
        )
    email = email.strip().lower()
    already = await session.scalar(
        select(TenantMember.user_id)
        .join(User, User.id == TenantMember.user_id)
        .where(TenantMember.tenant_id == tenant_id, User.email == email)
    )
    if already is not None:
        raise Conflict("This person is already a member", code="already_member")
    invitation = Invitation(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        email=email,
        role=role,
        invited_by=user.id,
        expires_at=datetime.now(UTC) + timedelta(hours=settings.invitation_ttl_hours),
    )
    session.add(invitation)
    await session.flush()
    await audit.record(
        session,
        audit.Action.invite,
        actor=user.id,
        tenant=tenant_id,
        target_type="invitation",
        target_id=invitation.id,
        details={"email": email, "role": str(role)},
    )
    return invitation, invitation_token(settings, invitation)


async def list_invitations(
    session: AsyncSession, user: User, tenant_id: uuid.UUID
) -> list[Invitation]:
    await manager_of(session, user, tenant_id)
    return list(
        await session.scalars(
            select(Invitation)
            .where(Invitation.tenant_id == tenant_id)
            .order_by(Invitation.created_at.desc())
            .limit(200)
        )
    )


async def revoke_invitation(
    session: AsyncSession, user: User, tenant_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation:
    await manager_of(session, user, tenant_id)
    invitation = await session.scalar(
        select(Invitation).where(Invitation.id == invitation_id, Invitation.tenant_id == tenant_id)
    )
    if invitation is None:
        raise NotFound("Invitation not found", code="invitation_not_found")
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = datetime.now(UTC)
    return invitation


async def accept(session: AsyncSession, settings: Settings, user: User, token: str) -> Tenant:
    """Join the invitation's tenant. The invitation is for one email address: another account
    presenting the token is refused (a forwarded token is not an open door)."""
    try:
        claims = jwt.decode(
            token, _invite_key(settings), algorithms=["HS256"], audience=INVITE_AUDIENCE
        )
        invitation_id = uuid.UUID(str(claims["inv"]))
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise _invalid_invitation() from exc
    invitation = await session.scalar(
        select(Invitation).where(Invitation.id == invitation_id).with_for_update()
    )
    now = datetime.now(UTC)
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
    ):
        raise _invalid_invitation()
    if invitation.email != user.email:
        raise Forbidden(
            "This invitation was sent to another email address", code="invitation_email_mismatch"
        )
    tenant = await session.scalar(
        select(Tenant).where(Tenant.id == invitation.tenant_id).with_for_update()
    )
    if tenant is None:
        raise _invalid_invitation()
    existing = await session.get(TenantMember, (tenant.id, user.id))
    if existing is None:
        session.add(TenantMember(tenant_id=tenant.id, user_id=user.id, role=invitation.role))
    invitation.accepted_at = now
    invitation.accepted_by = user.id
    await session.flush()
    await audit.record(
        session,
        audit.Action.member_joined,
        actor=user.id,
        tenant=tenant.id,
        target_type="user",
        target_id=user.id,
        details={"role": str(invitation.role), "invitation_id": str(invitation.id)},
    )
    return tenant


# --- roles, removal, leaving, transfer ------------------------------------------------------


async def _member_row(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> TenantMember:
    row = await session.get(TenantMember, (tenant_id, user_id), with_for_update=True)
    if row is None:
        raise NotFound("Member not found", code="member_not_found")
    return row


async def _owner_count(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                TenantMember.tenant_id == tenant_id, TenantMember.role == TenantRole.owner
            )
        )
        or 0
    )


def _may_touch(actor_role: TenantRole, target_role: TenantRole) -> None:
    if target_role == TenantRole.owner and actor_role != TenantRole.owner:
        raise Forbidden("Only an owner can change another owner", code="owner_required")


async def change_role(
    session: AsyncSession,
    user: User,
    tenant_id: uuid.UUID,
    member_id: uuid.UUID,
    role: TenantRole,
) -> TenantMember:
    found = await manager_of(session, user, tenant_id, lock=True)
    _organisation(found)
    if role == TenantRole.owner:
        raise Forbidden("Make an owner with POST /tenants/{id}/transfer", code="role_not_allowed")
    row = await _member_row(session, tenant_id, member_id)
    _may_touch(found.role, TenantRole(row.role))
    if row.role == TenantRole.owner and await _owner_count(session, tenant_id) <= 1:
        raise Conflict("The last owner cannot be demoted", code="last_owner")
    before = TenantRole(row.role)
    row.role = role
    await session.flush()
    await audit.record(
        session,
        audit.Action.role_change,
        actor=user.id,
        tenant=tenant_id,
        target_type="user",
        target_id=member_id,
        details={"from": str(before), "to": str(role)},
    )
    return row


async def _drop_member(session: AsyncSession, tenant_id: uuid.UUID, row: TenantMember) -> int:
    """Delete the membership and revoke the member's API keys bound to the tenant."""
    result = await session.execute(
        update(ApiKey)
        .where(
            ApiKey.user_id == row.user_id,
            ApiKey.tenant_id == tenant_id,
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    await session.delete(row)
    await session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


async def remove_member(
    session: AsyncSession, user: User, tenant_id: uuid.UUID, member_id: uuid.UUID
) -> None:
    found = await manager_of(session, user, tenant_id, lock=True)
    _organisation(found)
    if member_id == user.id:
        raise Conflict("Use POST /tenants/{id}/leave to leave", code="use_leave")
    row = await _member_row(session, tenant_id, member_id)
    _may_touch(found.role, TenantRole(row.role))
    if row.role == TenantRole.owner and await _owner_count(session, tenant_id) <= 1:
        raise Conflict("The last owner cannot be removed", code="last_owner")
    revoked = await _drop_member(session, tenant_id, row)
    await audit.record(
        session,
        audit.Action.member_removed,
        actor=user.id,
        tenant=tenant_id,
        target_type="user",
        target_id=member_id,
        details={"api_keys_revoked": revoked},
    )


async def leave(session: AsyncSession, user: User, tenant_id: uuid.UUID) -> None:
    found = await member_of(session, user, tenant_id, lock=True)
    _organisation(found)
    row = await _member_row(session, tenant_id, user.id)
    if row.role == TenantRole.owner and await _owner_count(session, tenant_id) <= 1:
        raise Conflict("The last owner cannot leave; transfer ownership first", code="last_owner")
    revoked = await _drop_member(session, tenant_id, row)
    await audit.record(
        session,
        audit.Action.member_left,
        actor=user.id,
        tenant=tenant_id,
        target_type="user",
        target_id=user.id,
        details={"api_keys_revoked": revoked},
    )


async def transfer(
    session: AsyncSession, user: User, tenant_id: uuid.UUID, new_owner_id: uuid.UUID
) -> None:
    """The new owner must be a member; the previous owner stays as an admin."""
    found = await member_of(session, user, tenant_id, lock=True)
    _organisation(found)
    if found.role != TenantRole.owner:
        raise Forbidden("Only an owner can transfer ownership", code="owner_required")
    if new_owner_id == user.id:
        raise Conflict("You already own this tenant", code="already_owner")
    target = await _member_row(session, tenant_id, new_owner_id)
    mine = await _member_row(session, tenant_id, user.id)
    target.role = TenantRole.owner
    mine.role = TenantRole.admin
    await session.flush()
    await audit.record(
        session,
        audit.Action.ownership_transferred,
        actor=user.id,
        tenant=tenant_id,
        target_type="user",
        target_id=new_owner_id,
    )
