"""Request dependencies: the unit of work, and who is calling.

No request holds a database connection while it waits for its client. The request session is
lazy (it checks out a connection at its first statement, so an upload streaming its body has
none), and the caller is authenticated in a short session of its own that is over before the
endpoint runs. See docs/decisions/0005-request-connections.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.auth import service as auth_service
from verbatim.auth.security import API_KEY_PREFIX
from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.errors import Forbidden, Unauthorized
from verbatim.models import User
from verbatim.services import Services
from verbatim.tenancy import resolve as tenancy
from verbatim.tenancy.scope import access_of, attach
from verbatim.web import session as web_session

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login/form", auto_error=False)


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def`
# dependency in the thread pool, a thread hop per dependency per request.
async def get_services_dep(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services_dep)]


async def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed in exactly this one place, before the response.

    Lazy: no connection is taken until the endpoint's first statement, so work done before it
    (streaming a body, hashing, probing) holds none.
    """
    async with session_scope(services.sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """For endpoints that only read (the library lists): each statement commits on its own,
    which saves a transaction's BEGIN and COMMIT round trips, a tenth of a list's CPU under
    load (issue 15). The page and its count may then see different snapshots; a row added in
    between is what the next request would show anyway. Never for an endpoint that writes.
    """
    async with services.autocommit_sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _authenticate(request: Request, services: Services, token: str | None) -> User:
    """The caller, with their active tenant and role attached (`tenancy.scope`)."""
    api_key = request.headers.get("x-api-key")
    requested = tenancy.parse_header(request.headers.get(tenancy.HEADER))
    # A short unit of work of its own: the connection goes back to the pool before the
    # endpoint runs. It only reads, and records an API key's use without waiting on a lock,
    # each a single statement: in autocommit, so no BEGIN and COMMIT round trips (and the API
    # key's row lock lasts only for its UPDATE).
    async with session_scope(services.autocommit_sessionmaker) as auth:
        secret = api_key or (token if token and token.startswith(API_KEY_PREFIX) else None)
        if secret:
            key, user = await auth_service.key_and_user(auth, secret)
            access = await tenancy.resolve(auth, user, requested, key.tenant_id, key.id)
        elif token:
            user = await auth_service.user_from_token(auth, token, services.settings, "access")
            access = await tenancy.resolve(auth, user, requested, None)
        elif cookie := web_session.session_token(request):
            # The browser's cookie session; a state-changing request must carry its CSRF token.
            web_session.check_csrf(request, cookie, services.settings)
            user = await web_session.user_from_session(auth, cookie, services.settings)
            # The tenant chosen in the web UI, unless the request names one; still checked
            # against membership here (a stale choice is 404 tenant_not_found, never a write
            # to another tenant).
            chosen = requested or web_session.chosen_tenant(request)
            access = await tenancy.resolve(auth, user, chosen, None)
        else:
            raise Unauthorized()
    if request.method not in SAFE_METHODS and not access.can_write:
        # Viewers (and administrators looking in) read only: one check for every route.
        raise Forbidden("Your role in this tenant is read-only", code="tenant_read_only")
    return attach(user, access)


async def current_user(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> User:
    """The caller, attached to the request session without a query (`merge(load=False)`), so
    an endpoint changing the user still has it flushed and committed with its own work. Their
    active tenant and role come along (`tenancy.scope.access_of`)."""
    user = await _authenticate(request, services, token)
    access = access_of(user)
    return attach(await session.merge(user, load=False), access)


CurrentUser = Annotated[User, Depends(current_user)]


async def api_caller(
    request: Request,
    services: ServicesDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> User:
    """The caller, for endpoints that run their own units of work (no request session): the
    OpenAI-compatible API, whose requests wait minutes for a job."""
    return await _authenticate(request, services, token)


ApiCaller = Annotated[User, Depends(api_caller)]
# The caller for a read-only endpoint on `ReadSessionDep`: not attached to any session.
Reader = ApiCaller
