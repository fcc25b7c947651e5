"""Accounts: registration, login, tokens, API keys. Services flush; the caller commits.

Password hashing runs off the event loop (security.*_async) and never while a database
connection is held: rate-limit counters and the user lookup use a short unit of work of their
own (committed even when the login then fails), the request's session is touched only after.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from verbatim.audit import service as audit
from verbatim.auth import ratelimit, security
from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized
from verbatim.kit.pagination import paginate
from verbatim.models import ApiKey, RefreshToken, Role, Tenant, TenantMember, TenantRole, User

log = structlog.get_logger("verbatim.auth")

Sessions = async_sessionmaker[AsyncSession]


class RefreshTokenReused(Unauthorized):
    """A refresh token that was already exchanged came back: its family is now revoked.

    The revocation must be committed although the request fails: endpoints answer this error
    with `error_response` instead of raising it.
    """

    def __init__(self) -> None:
        super().__init__(
            "This refresh token was already used; every session it belonged to is now logged out",
            code="token_reused",
        )


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _invalid_token() -> Unauthorized:
    return Unauthorized("Invalid or expired token", code="invalid_token")


# --- accounts -----------------------------------------------------------------------------


async def create_user(
    session: AsyncSession, email: str, password: str, role: Role = Role.user
) -> User:
    """A user with a personal tenant of their own. The password is hashed off the event loop,
    before any query, so no connection is held while it runs."""
    email = normalise_email(email)
    password_hash = await security.hash_password_async(password)
    if await session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("An account with this email already exists", code="email_taken")
    tenant = Tenant(name=email)
    session.add(tenant)
    await session.flush()
    user = User(email=email, password_hash=password_hash, role=role, tenant_id=tenant.id)
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
            # The personal tenant's one member (decision 0019).
            session.add(TenantMember(tenant_id=tenant.id, user_id=user.id, role=TenantRole.owner))
            await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("An account with this email already exists", code="email_taken") from exc
    return user


async def register(
    sessions: Sessions,
    session: AsyncSession,
    settings: Settings,
    email: str,
    password: str,
    address: str,
) -> User:
    """Self-service registration, counted per client address."""
    if not settings.registration_open:
        raise Forbidden("Registration is closed on this server", code="registration_closed")
    try:
        async with session_scope(sessions) as counters:
            await ratelimit.hit(counters, ratelimit.register_limits(settings, address))
    except TooManyRequests:
        log.warning("registration_rate_limited", address=address)
        raise
    return await create_user(session, email, password)


async def login(
    sessions: Sessions,
    session: AsyncSession,
    settings: Settings,
    email: str,
    password: str,
    address: str,
) -> dict[str, object]:
    """Check the password and issue a token pair; limited per account and per client address."""
    email = normalise_email(email)
    digest = security.email_digest(email)
    limits = ratelimit.login_limits(settings, digest, address)
    try:
        async with session_scope(sessions) as counters:
            await ratelimit.hit(counters, limits)
            found = (
                await counters.execute(
                    select(User.id, User.password_hash, User.is_active).where(User.email == email)
                )
            ).first()
    except TooManyRequests:
        log.warning("login_rate_limited", email_hash=digest, address=address)
        raise
    # No connection is held from here until the password is checked.
    ok = await security.verify_password_async(
        found.password_hash if found is not None else security.DUMMY_HASH, password
    )
    if found is None or not ok:
        async with session_scope(sessions) as trail:  # recorded although the request fails
            await audit.record(
                trail,
                audit.Action.login_failed,
                actor=found.id if found is not None else None,
                tenant=None,
                target_type="user",
                target_id=found.id if found is not None else None,
                details={"email_hash": digest},
                address=address,
            )
        log.warning(
            "login_failed",
            email_hash=digest,
            address=address,
            user_id=str(found.id) if found is not None else None,
            reason="wrong_password" if found is not None else "unknown_email",
        )
        raise Unauthorized("Wrong email or password", code="invalid_credentials")
    if not found.is_active:
        log.warning("login_failed", email_hash=digest, address=address, reason="disabled")
        raise Forbidden("This account is disabled", code="account_disabled")
    await ratelimit.refund(session, limits[-1])  # a login that worked is not a failed login
    user = await session.get(User, found.id)
    if user is None:  # deleted between the two units of work
        raise Unauthorized("Wrong email or password", code="invalid_credentials")
    await audit.record(
        session,
        audit.Action.login_ok,
        actor=user.id,
        tenant=None,
        target_type="user",
        target_id=user.id,
        address=address,
    )
    return await issue_tokens(session, user, settings)


async def change_password(
    sessions: Sessions,
    session: AsyncSession,
    settings: Settings,
    user: User,
    current_password: str,
    new_password: str,
    address: str,
) -> dict[str, object]:
    """Set a new password; every refresh token and access token issued before stops working.

    A wrong current password counts as a failed login of the account (the same limits), so a
    stolen access token cannot be used to guess the password. Returns a fresh token pair.
    """
    digest = security.email_digest(user.email)
    limits = ratelimit.login_limits(settings, digest, address)
    async with session_scope(sessions) as counters:
        await ratelimit.hit(counters, limits)
        stored = await counters.scalar(select(User.password_hash).where(User.id == user.id))
    if stored is None or not await security.verify_password_async(stored, current_password):
        log.warning(
            "password_change_failed", email_hash=digest, address=address, user_id=str(user.id)
        )
        raise Forbidden("The current password is wrong", code="wrong_password")
    new_hash = await security.hash_password_async(new_password)
    await ratelimit.refund(session, limits[-1])
    locked = await session.get(User, user.id, with_for_update=True, populate_existing=True)
    if locked is None or not locked.is_active:
        raise _invalid_token()
    locked.password_hash = new_hash
    await _revoke_everything(session, locked)
    log.info("password_changed", user_id=str(user.id))
    return await issue_tokens(session, locked, settings)


async def set_password(session: AsyncSession, email: str, new_password: str) -> User:
    """Set a user's password without the current one (`verbatim user password`, for an operator
    helping a user who forgot theirs); every session of the user is logged out."""
    new_hash = await security.hash_password_async(new_password)
    user = await session.scalar(
        select(User).where(User.email == normalise_email(email)).with_for_update()
    )
    if user is None:
        raise NotFound("No account with this email", code="user_not_found")
    user.password_hash = new_hash
    await _revoke_everything(session, user)
    log.info("password_reset", user_id=str(user.id))
    return user


async def _revoke_everything(session: AsyncSession, user: User) -> None:
    """Revoke every refresh token of `user` and invalidate the access tokens issued so far."""
    user.token_version += 1
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    await session.flush()


# --- tokens -------------------------------------------------------------------------------


async def issue_tokens(
    session: AsyncSession, user: User, settings: Settings, family_id: uuid.UUID | None = None
) -> dict[str, object]:
    """An access token and a refresh token (stored, in `family_id` or a new family)."""
    secret = settings.resolved_secret_key()
    access_lifetime = timedelta(minutes=settings.access_token_minutes)
    refresh_lifetime = timedelta(days=settings.refresh_token_days)
    row = RefreshToken(
        id=uuid.uuid4(),
        user_id=user.id,
        tenant_id=user.tenant_id,
        family_id=family_id or uuid.uuid4(),
        expires_at=datetime.now(UTC) + refresh_lifetime,
    )
    session.add(row)
    await session.flush()
    return {
        "access_token": security.create_token(
            user.id, "access", secret, access_lifetime, version=user.token_version
        ),
        "refresh_token": security.create_token(
            user.id, "refresh", secret, refresh_lifetime, jti=str(row.id)
        ),
        "token_type": "bearer",
        "expires_in": int(access_lifetime.total_seconds()),
    }


def _max_lifetime(settings: Settings, token_type: security.TokenType) -> timedelta:
    if token_type == "access":  # noqa: S105 - a token type, not a secret
        return timedelta(minutes=settings.access_token_minutes)
    return timedelta(days=settings.refresh_token_days)


async def _refresh_row(
    session: AsyncSession, token: str, settings: Settings
) -> RefreshToken | None:
    """The stored row of a valid refresh token, locked; None if the token is not one of ours."""
    claims = security.decode_token(
        token, settings.resolved_secret_key(), "refresh", _max_lifetime(settings, "refresh")
    )
    if claims is None:
        return None
    try:
        row_id = uuid.UUID(claims.jti)
    except ValueError:
        return None
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.id == row_id).with_for_update()
    )
    if row is None or row.user_id != claims.user_id:
        return None
    return row


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def refresh(session: AsyncSession, settings: Settings, token: str) -> dict[str, object]:
    """Exchange a refresh token for a new pair; the old one is spent (rotation).

    Raises RefreshTokenReused, after revoking the family in `session`, for a spent token.
    """
    row = await _refresh_row(session, token, settings)
    if row is None or row.revoked_at is not None or row.expires_at <= datetime.now(UTC):
        raise _invalid_token()
    if row.used_at is not None:
        await _revoke_family(session, row.family_id)
        log.warning("refresh_token_reused", user_id=str(row.user_id), family_id=str(row.family_id))
        raise RefreshTokenReused()
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise _invalid_token()
    row.used_at = datetime.now(UTC)
    return await issue_tokens(session, user, settings, family_id=row.family_id)


async def logout(session: AsyncSession, settings: Settings, token: str) -> None:
    """Revoke the family of the presented refresh token (this login, on this device)."""
    row = await _refresh_row(session, token, settings)
    if row is None:
        raise _invalid_token()
    await _revoke_family(session, row.family_id)
    log.info("logout", user_id=str(row.user_id), family_id=str(row.family_id))


async def logout_all(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Log out everywhere: every refresh token of the user, and every access token issued."""
    user = await session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise _invalid_token()
    await _revoke_everything(session, user)
    log.info("logout_all", user_id=str(user_id))


async def user_from_token(
    session: AsyncSession, token: str, settings: Settings, expected: security.TokenType
) -> User:
    claims = security.decode_token(
        token, settings.resolved_secret_key(), expected, _max_lifetime(settings, expected)
    )
    if claims is None:
        raise _invalid_token()
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise _invalid_token()
    if expected == "access" and claims.version != user.token_version:
        raise _invalid_token()  # logged out everywhere, or the password changed, since
    return user


# --- API keys -----------------------------------------------------------------------------

API_KEY_USE_RESOLUTION = timedelta(minutes=1)


async def user_from_api_key(session: AsyncSession, secret: str) -> User:
    """The key's owner (see `key_and_user`)."""
    return (await key_and_user(session, secret))[1]


async def key_and_user(session: AsyncSession, secret: str) -> tuple[ApiKey, User]:
    """The key (its `tenant_id` is the tenant it is bound to) and its owner. Its use is
    recorded at most once a minute, and never waits: a row
    another transaction has locked is skipped (that use is recorded by the next request).

    Run it in a short session of its own (see `deps.current_user`): the update's row lock is
    held only until that session commits, a few milliseconds later.
    """
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == security.hash_api_key(secret), ApiKey.revoked_at.is_(None)
        )
    )
    user = await session.get(User, key.user_id) if key is not None else None
    if key is None or user is None or not user.is_active:
        raise Unauthorized("Invalid API key", code="invalid_api_key")
    now = datetime.now(UTC)
    stale = now - API_KEY_USE_RESOLUTION
    if key.last_used_at is None or key.last_used_at < stale:
        lockable = (
            select(ApiKey.id)
            .where(
                ApiKey.id == key.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale),
            )
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == lockable)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return key, user


async def create_api_key(
    session: AsyncSession, user: User, name: str, tenant_id: uuid.UUID | None = None
) -> tuple[ApiKey, str]:
    """A key bound to one tenant (default: the personal one); the caller must be a member
    with a role there. It acts in that tenant only, and stops working when the membership
    ends."""
    tenant_id = tenant_id or user.tenant_id
    if tenant_id != user.tenant_id:
        member = await session.scalar(
            select(TenantMember.role).where(
                TenantMember.tenant_id == tenant_id, TenantMember.user_id == user.id
            )
        )
        if member is None:
            raise NotFound("Tenant not found", code="tenant_not_found")
    secret, prefix, digest = security.new_api_key()
    key = ApiKey(user_id=user.id, tenant_id=tenant_id, name=name, prefix=prefix, key_hash=digest)
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        audit.Action.key_created,
        actor=user.id,
        tenant=tenant_id,
        target_type="api_key",
        target_id=key.id,
        details={"name": name, "prefix": prefix},
    )
    return key, secret


async def list_api_keys(
    session: AsyncSession, user: User, limit: int = 50, offset: int = 0
) -> tuple[list[ApiKey], int]:
    stmt = (
        select(ApiKey)
        .where(ApiKey.user_id == user.id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id)
    )
    return await paginate(session, stmt, limit, offset)


async def revoke_api_key(session: AsyncSession, user: User, key_id: uuid.UUID) -> ApiKey:
    key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id))
    if key is None:
        raise NotFound("API key not found")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await audit.record(
            session,
            audit.Action.key_revoked,
            actor=user.id,
            tenant=key.tenant_id,
            target_type="api_key",
            target_id=key.id,
        )
    return key
