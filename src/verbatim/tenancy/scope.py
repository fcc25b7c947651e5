"""The one place that says which rows a caller may see and write (decision 0019).

Every query of every domain filters with `visible(Model, user)`, and every new row takes its
tenant from `tenant_of(user)`. The request dependency (`deps.current_user`) resolves the active
tenant and the caller's role in it and attaches an `Access` to the user object; code running
outside a request (workers, the CLI) acts in a tenant with `act_in`, or falls back to the
user's personal tenant.

Rules:
- A row is visible when its `tenant_id` is the active tenant. In a personal tenant the row must
  also be the caller's own (`user_id`): a personal library has one member, so the second
  condition changes nothing today and keeps a personal row private even if a row were ever
  written with another user's personal tenant.
- Writing needs a writing role (owner, admin, member); viewers and platform administrators
  looking into a tenant they do not belong to read only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_

from verbatim.errors import Forbidden
from verbatim.models import TenantRole, User

WRITERS = frozenset({TenantRole.owner, TenantRole.admin, TenantRole.member})
MANAGERS = frozenset({TenantRole.owner, TenantRole.admin})

_ATTR = "_verbatim_access"


@dataclass(frozen=True)
class Access:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: TenantRole
    personal: bool
    # A platform administrator looking into a tenant they are not a member of (audited).
    admin_override: bool = False
    # Set when the request authenticated with an API key bound to this tenant.
    api_key_id: uuid.UUID | None = None

    @property
    def can_write(self) -> bool:
        return self.role in WRITERS and not self.admin_override

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGERS and not self.admin_override


def personal_access(user: User) -> Access:
    return Access(user.id, user.tenant_id, TenantRole.owner, personal=True)


def attach(user: User, access: Access) -> User:
    """Make `access` the user's active tenant for the rest of this request (or job)."""
    object.__setattr__(user, _ATTR, access)
    return user


def access_of(user: User) -> Access:
    found = user.__dict__.get(_ATTR)
    return found if isinstance(found, Access) else personal_access(user)


def act_in(user: User, tenant_id: uuid.UUID, role: TenantRole = TenantRole.member) -> User:
    """For workers: act as `user` in the tenant a job row carries (the job was authorised when
    it was queued)."""
    personal = tenant_id == user.tenant_id
    return attach(user, Access(user.id, tenant_id, role, personal=personal))


def tenant_of(user: User) -> uuid.UUID:
    """The tenant new rows of this caller belong to."""
    return access_of(user).tenant_id


def visible(model: Any, user: User) -> ColumnElement[bool]:
    """The ownership filter for `model` (any table with `tenant_id` and `user_id`)."""
    access = access_of(user)
    clause: ColumnElement[bool] = model.tenant_id == access.tenant_id
    if access.personal:
        clause = and_(clause, model.user_id == access.user_id)
    return clause


def owner_sql(alias: str, tenant_id: uuid.UUID | None, personal: bool) -> str:
    """`visible` as a fixed SQL fragment over `alias` for raw SQL (search), values bound as
    :tenant_id and :user_id. `tenant_id` None (benchmarks loading rows without tenants)
    checks the user only."""
    if tenant_id is None:
        return f"{alias}.user_id = :user_id"
    if personal:
        return f"{alias}.user_id = :user_id AND {alias}.tenant_id = :tenant_id"
    return f"{alias}.tenant_id = :tenant_id"


def require_write(user: User) -> None:
    if not access_of(user).can_write:
        raise Forbidden("Your role in this tenant is read-only", code="tenant_read_only")


def storage_prefix(user: User) -> str:
    """Where this caller's new objects go: organisation tenants under `{tenant_id}/` (seed 004
    layout); personal tenants keep `uploads/user_{id}/`, so existing keys stay where they are."""
    access = access_of(user)
    if access.personal:
        return f"uploads/user_{access.user_id}/"
    return f"{access.tenant_id}/uploads/"
