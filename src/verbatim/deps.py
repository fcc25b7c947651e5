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
from verbatim.errors import Unauthorized
from verbatim.models import User
from verbatim.services import Services
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


async def _authenticate(request: Request, services: Services, token: str | None) -> User:
    api_key = request.headers.get("x-api-key")
    # A short unit of work of its own: the connection goes back to the pool before the
    # endpoint runs. It only reads, and records an API key's use without waiting on a lock,
    # each a single statement: in autocommit, so no BEGIN and COMMIT round trips (and the API
    # key's row lock lasts only for its UPDATE).
    async with session_scope(services.autocommit_sessionmaker) as auth:
        if api_key:
            return await auth_service.user_from_api_key(auth, api_key)
        if token:
            if token.startswith(API_KEY_PREFIX):
                return await auth_service.user_from_api_key(auth, token)
            return await auth_service.user_from_token(auth, token, services.settings, "access")
        cookie = web_session.session_token(request)
        if cookie:
            # The browser's cookie session; a state-changing request must carry its CSRF token.
            web_session.check_csrf(request, cookie, services.settings)
            return await web_session.user_from_session(auth, cookie, services.settings)
    raise Unauthorized()


async def current_user(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> User:
    """The caller, attached to the request session without a query (`merge(load=False)`), so
    an endpoint changing the user still has it flushed and committed with its own work."""
    user = await _authenticate(request, services, token)
    return await session.merge(user, load=False)


CurrentUser = Annotated[User, Depends(current_user)]
