"""Who is calling, for the endpoints that need more than `CurrentUser`.

Managing credentials (API keys, the password, sessions, accounts) needs a password session: a
JWT access token from a login. An API key is refused with 403 `password_session_required`, so a
leaked key cannot mint new keys that outlive its own revocation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from verbatim.auth import service as auth_service
from verbatim.auth.security import API_KEY_PREFIX
from verbatim.db import session_scope
from verbatim.deps import ServicesDep
from verbatim.errors import Forbidden, Unauthorized
from verbatim.models import Role, User
from verbatim.web import session as web_session

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login/form", auto_error=False)


async def password_session_user(
    request: Request,
    services: ServicesDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> User:
    """The user of a JWT access token; 403 for an API key.

    Authenticated in a short unit of work of its own, so the request holds no connection while
    it hashes a password; the returned User is detached (read its columns, reload to change it).
    """
    if request.headers.get("x-api-key") or (token and token.startswith(API_KEY_PREFIX)):
        raise Forbidden(
            "This needs a password session (log in), not an API key",
            code="password_session_required",
        )
    cookie = web_session.session_token(request)
    if not token and cookie:
        # A browser session is a password session: it was made by signing in.
        web_session.check_csrf(request, cookie, services.settings)
        async with session_scope(services.sessionmaker) as session:
            return await web_session.user_from_session(session, cookie, services.settings)
    if not token:
        raise Unauthorized()
    async with session_scope(services.sessionmaker) as session:
        return await auth_service.user_from_token(session, token, services.settings, "access")


PasswordSessionUser = Annotated[User, Depends(password_session_user)]


async def admin_user(user: PasswordSessionUser) -> User:
    if user.role != Role.admin:
        raise Forbidden("This needs an administrator", code="admin_required")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def client_address(request: Request) -> str:
    """The client's IP address, as uvicorn saw it (behind a proxy, from X-Forwarded-For when
    the proxy is trusted: uvicorn's --forwarded-allow-ips / FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"
