"""Accounts: registration, login, tokens, API keys. Services flush; the caller commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.auth import security
from verbatim.config import Settings
from verbatim.errors import Conflict, Forbidden, NotFound, Unauthorized
from verbatim.models import ApiKey, Role, Tenant, User


async def create_user(
    session: AsyncSession, email: str, password: str, role: Role = Role.user
) -> User:
    """A user with a personal tenant of their own."""
    email = email.strip().lower()
    if await session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("An account with this email already exists", code="email_taken")
    tenant = Tenant(name=email)
    session.add(tenant)
    await session.flush()
    user = User(
        email=email,
        password_hash=security.hash_password(password),
        role=role,
        tenant_id=tenant.id,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("An account with this email already exists", code="email_taken") from exc
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        security.verify_password(security.DUMMY_HASH, password)
        raise Unauthorized("Wrong email or password", code="invalid_credentials")
    if not security.verify_password(user.password_hash, password):
        raise Unauthorized("Wrong email or password", code="invalid_credentials")
    if not user.is_active:
        raise Forbidden("This account is disabled", code="account_disabled")
    return user


def issue_tokens(user: User, settings: Settings) -> dict[str, object]:
    secret = settings.resolved_secret_key()
    access_lifetime = timedelta(minutes=settings.access_token_minutes)
    return {
        "access_token": security.create_token(user.id, "access", secret, access_lifetime),
        "refresh_token": security.create_token(
            user.id, "refresh", secret, timedelta(days=settings.refresh_token_days)
        ),
        "token_type": "bearer",
        "expires_in": int(access_lifetime.total_seconds()),
    }


async def user_from_token(
    session: AsyncSession, token: str, settings: Settings, expected: security.TokenType
) -> User:
    claims = security.decode_token(token, settings.resolved_secret_key())
    if claims is None or claims.type != expected:
        raise Unauthorized("Invalid or expired token", code="invalid_token")
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid or expired token", code="invalid_token")
    return user


async def user_from_api_key(session: AsyncSession, secret: str) -> User:
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == security.hash_api_key(secret), ApiKey.revoked_at.is_(None)
        )
    )
    user = await session.get(User, key.user_id) if key is not None else None
    if key is None or user is None or not user.is_active:
        raise Unauthorized("Invalid API key", code="invalid_api_key")
    key.last_used_at = datetime.now(UTC)
    return user


async def create_api_key(session: AsyncSession, user: User, name: str) -> tuple[ApiKey, str]:
    secret, prefix, digest = security.new_api_key()
    key = ApiKey(
        user_id=user.id, tenant_id=user.tenant_id, name=name, prefix=prefix, key_hash=digest
    )
    session.add(key)
    await session.flush()
    return key, secret


async def list_api_keys(
    session: AsyncSession, user: User, *, limit: int = 500, offset: int = 0
) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user.id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


async def revoke_api_key(session: AsyncSession, user: User, key_id: uuid.UUID) -> ApiKey:
    key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id))
    if key is None:
        raise NotFound("API key not found")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
    return key
