"""Cookie sessions for the browser, made by the auth service.

The cookie holds a refresh token issued by `auth.service.issue_tokens` (a stored, revocable
row): signing out revokes its family, a password change or "log out everywhere" revokes every
one. It is never exchanged through `/auth/refresh` (HttpOnly: scripts cannot read it), so it
is checked as it is on each request: a valid signature, its row neither revoked nor expired,
an active user.

CSRF: a cookie-authenticated request that changes state must carry the session's CSRF token
(HMAC of the token's row id under the server secret) in `X-CSRF-Token` or a form field
`csrf_token`. The page embeds it in a <meta> tag; another origin cannot read it. SameSite=Lax
is a second line.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.auth import security
from verbatim.config import Settings
from verbatim.errors import Forbidden, Unauthorized
from verbatim.models import RefreshToken, User

COOKIE = "verbatim_session"
# The active tenant the browser chose (decision 0026): only a choice; membership is checked on
# every request, by the pages and by the API's tenant resolution.
TENANT_COOKIE = "verbatim_tenant"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def _jti(token: str, settings: Settings) -> str | None:
    claims = security.decode_token(
        token,
        settings.resolved_secret_key(),
        "refresh",
        timedelta(days=settings.refresh_token_days),
    )
    return claims.jti if claims is not None else None


def csrf_token(token: str, settings: Settings) -> str:
    """The CSRF token of a session: bound to it, useless with any other."""
    jti = _jti(token, settings) or ""
    key = hashlib.sha256(b"csrf:" + settings.resolved_secret_key().encode()).digest()
    return hmac.new(key, jti.encode(), hashlib.sha256).hexdigest()


def check_csrf(
    request: Request, token: str, settings: Settings, form_value: str | None = None
) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER) or form_value or ""
    if not hmac.compare_digest(sent, csrf_token(token, settings)):
        raise Forbidden("Missing or wrong CSRF token; reload the page", code="csrf_failed")


async def user_from_session(session: AsyncSession, token: str, settings: Settings) -> User:
    """The user of a session cookie; 401 when it is not (or no longer) valid."""
    invalid = Unauthorized("Your session has ended; sign in again", code="session_expired")
    claims = security.decode_token(
        token,
        settings.resolved_secret_key(),
        "refresh",
        timedelta(days=settings.refresh_token_days),
    )
    if claims is None:
        raise invalid
    try:
        row_id = uuid.UUID(claims.jti)
    except ValueError:
        raise invalid from None
    row = await session.scalar(select(RefreshToken).where(RefreshToken.id == row_id))
    if (
        row is None
        or row.user_id != claims.user_id
        or row.revoked_at is not None
        or row.expires_at <= datetime.now(UTC)
    ):
        raise invalid
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise invalid
    return user


def set_cookie(request: Request, response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.refresh_token_days * 86400,
        httponly=True,
        samesite="lax",
        # Behind HTTPS (a TLS proxy trusted by uvicorn's --forwarded-allow-ips sets the scheme).
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


def chosen_tenant(request: Request) -> uuid.UUID | None:
    raw = request.cookies.get(TENANT_COOKIE)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def set_tenant_cookie(
    request: Request, response: Response, tenant_id: uuid.UUID | None, settings: Settings
) -> None:
    if tenant_id is None:
        response.delete_cookie(TENANT_COOKIE, path="/", httponly=True, samesite="lax")
        return
    response.set_cookie(
        TENANT_COOKIE,
        str(tenant_id),
        max_age=settings.refresh_token_days * 86400,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
