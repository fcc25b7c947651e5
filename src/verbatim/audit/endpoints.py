from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query

from verbatim.audit import service
from verbatim.audit.schemas import AuditPage
from verbatim.deps import CurrentUser, SessionDep
from verbatim.errors import Forbidden
from verbatim.kit.pagination import PageQuery
from verbatim.models import Role
from verbatim.tenancy.scope import access_of

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get(
    "/audit",
    response_model=AuditPage,
    responses={403: {"description": "tenant_admin_required"}},
)
async def list_audit(
    user: CurrentUser,
    session: SessionDep,
    page: PageQuery,
    action: str | None = Query(
        None, max_length=64, description='An action ("auth.login"), or a prefix ending in "."'
    ),
    actor: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> object:
    """The active tenant's audit log (`X-Tenant-ID`), newest first: for its owners and admins
    (and platform administrators, whose look is itself recorded)."""
    access = access_of(user)
    if not (access.can_manage or (access.admin_override and user.role == Role.admin)):
        raise Forbidden("This needs an owner or admin of the tenant", code="tenant_admin_required")
    result = await service.list_entries(
        session, access.tenant_id, page, action=action, actor=actor, since=since, until=until
    )
    return result.response()
