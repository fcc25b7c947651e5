"""Organisations and their members (decision 0019).

Changing who belongs to a tenant grants or withdraws access, so it needs a password session
(like credential management): an API key is refused with 403 `password_session_required`.
Reading (members, jobs, usage) works with either.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from verbatim.auth.deps import PasswordSessionUser
from verbatim.deps import CurrentUser, SessionDep, SettingsDep
from verbatim.kit.pagination import PageQuery
from verbatim.kit.schemas import CursorPage
from verbatim.models import JobStatus, JobType
from verbatim.tenancy import admin_views, mail, service
from verbatim.tenancy.schemas import (
    AcceptIn,
    InvitationCreated,
    InvitationIn,
    InvitationOut,
    MemberOut,
    RoleIn,
    TenantIn,
    TenantJobOut,
    TenantOut,
    TransferIn,
    UsageOut,
)

router = APIRouter(prefix="/api/v1", tags=["tenants"])

Responses = dict[int | str, dict[str, Any]]
_MANAGE: Responses = {
    403: {"description": "tenant_admin_required, owner_required, password_session_required"},
    404: {"description": "tenant_not_found, member_not_found"},
    409: {"description": "personal_tenant, last_owner"},
}


@router.get("/tenants", response_model=list[TenantOut])
async def my_tenants(user: CurrentUser, session: SessionDep) -> object:
    """The tenants you belong to (your personal one first) and your role in each. Send one's
    id as `X-Tenant-ID` to act in it."""
    return await service.my_tenants(session, user)


@router.post("/tenants", response_model=TenantOut, status_code=status.HTTP_201_CREATED)
async def create_tenant(body: TenantIn, user: PasswordSessionUser, session: SessionDep) -> object:
    """Create an organisation; you are its owner."""
    tenant = await service.create_organisation(session, user, body.name)
    return {**service.tenant_out(tenant, None), "role": "owner"}


@router.get("/tenants/{tenant_id}", response_model=TenantOut)
async def get_tenant(tenant_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    return await service.get_tenant(session, user, tenant_id)


@router.get("/tenants/{tenant_id}/members", response_model=list[MemberOut])
async def list_members(tenant_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    return await service.list_members(session, user, tenant_id)


@router.patch("/tenants/{tenant_id}/members/{user_id}", response_model=MemberOut, responses=_MANAGE)
async def change_role(
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    body: RoleIn,
    user: PasswordSessionUser,
    session: SessionDep,
) -> object:
    """Set a member's role (admin, member, viewer); owners change hands by transfer."""
    await service.change_role(session, user, tenant_id, user_id, body.role)
    members = await service.list_members(session, user, tenant_id)
    return next(m for m in members if m["user_id"] == user_id)


@router.delete(
    "/tenants/{tenant_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_MANAGE,
)
async def remove_member(
    tenant_id: uuid.UUID, user_id: uuid.UUID, user: PasswordSessionUser, session: SessionDep
) -> Response:
    """Remove a member: access ends at their next request; their keys bound here are revoked."""
    await service.remove_member(session, user, tenant_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/tenants/{tenant_id}/leave", status_code=status.HTTP_204_NO_CONTENT, responses=_MANAGE
)
async def leave(tenant_id: uuid.UUID, user: PasswordSessionUser, session: SessionDep) -> Response:
    """Leave an organisation (409 `last_owner` for its last owner)."""
    await service.leave(session, user, tenant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/tenants/{tenant_id}/transfer", status_code=status.HTTP_204_NO_CONTENT, responses=_MANAGE
)
async def transfer(
    tenant_id: uuid.UUID, body: TransferIn, user: PasswordSessionUser, session: SessionDep
) -> Response:
    """Make another member the owner; you stay as an admin."""
    await service.transfer(session, user, tenant_id, body.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/tenants/{tenant_id}/invitations",
    response_model=InvitationCreated,
    status_code=status.HTTP_201_CREATED,
    responses={**_MANAGE, 409: {"description": "personal_tenant, already_member"}},
)
async def invite(
    tenant_id: uuid.UUID,
    body: InvitationIn,
    user: PasswordSessionUser,
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    """Invite by email. The answer carries the signed token (and its expiry) to pass on; it is
    also mailed when VERBATIM_SMTP_HOST is set. Only that email's account can accept it."""
    invitation, token = await service.invite(
        session, settings, user, tenant_id, str(body.email), body.role
    )
    found = await service.member_of(session, user, tenant_id)
    mailed = await mail.send_invitation(
        settings, invitation.email, found.tenant.name, token, invitation.expires_at.isoformat()
    )
    return {
        **InvitationOut.model_validate(invitation).model_dump(),
        "token": token,
        "accept_url": mail.accept_link(settings, token),
        "mailed": mailed,
    }


@router.get(
    "/tenants/{tenant_id}/invitations", response_model=list[InvitationOut], responses=_MANAGE
)
async def list_invitations(tenant_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    return await service.list_invitations(session, user, tenant_id)


@router.delete(
    "/tenants/{tenant_id}/invitations/{invitation_id}",
    response_model=InvitationOut,
    responses=_MANAGE,
)
async def revoke_invitation(
    tenant_id: uuid.UUID,
    invitation_id: uuid.UUID,
    user: PasswordSessionUser,
    session: SessionDep,
) -> object:
    return await service.revoke_invitation(session, user, tenant_id, invitation_id)


@router.post(
    "/invitations/accept",
    response_model=TenantOut,
    responses={
        403: {"description": "invitation_email_mismatch, password_session_required"},
        404: {"description": "invitation_invalid (unknown, expired, used or revoked)"},
    },
)
async def accept_invitation(
    body: AcceptIn, user: PasswordSessionUser, session: SessionDep, settings: SettingsDep
) -> object:
    tenant = await service.accept(session, settings, user, body.token)
    return await service.get_tenant(session, user, tenant.id)


# --- tenant admin views --------------------------------------------------------------------


@router.get("/tenants/{tenant_id}/jobs", response_model=CursorPage[TenantJobOut], responses=_MANAGE)
async def tenant_jobs(
    tenant_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    page: PageQuery,
    status: JobStatus | None = None,
    type: JobType | None = None,
    member: uuid.UUID | None = None,
) -> object:
    """Every job of the tenant, newest first (owners and admins), filtered by status, type and
    the member who started it."""
    result = await admin_views.tenant_jobs(
        session, user, tenant_id, page=page, status=status, type=type, member=member
    )
    return result.response()


@router.get("/tenants/{tenant_id}/usage", response_model=UsageOut, responses=_MANAGE)
async def tenant_usage(
    tenant_id: uuid.UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> object:
    """Storage used, unfinished jobs, audio minutes this month per engine, quotas, and each
    member's share (owners and admins)."""
    return await admin_views.tenant_usage(session, settings, user, tenant_id)
