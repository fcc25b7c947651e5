"""Password hashing (argon2id), JWT access/refresh tokens and API key secrets."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
API_KEY_PREFIX = "vbk_"
_ALGORITHM = "HS256"
# Clock skew tolerated between API processes when checking `iat` and the lifetime of a token.
TOKEN_LEEWAY = timedelta(seconds=60)
# Argon2 hashes run at once per API process. Each takes ~50 ms of CPU and 64 MiB of memory in a
# thread off the event loop; the rest wait their turn, so a flood costs time, not memory.
HASH_CONCURRENCY = 2
HASH_NICENESS = 10

TokenType = Literal["access", "refresh"]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against this keeps login timing the same whether or not the email exists.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def _lower_priority() -> None:
    """Run this hashing thread at nice 10: under CPU contention the event loop's thread (and
    with it every other request) goes first, and logins wait. Measured here with 6 verifies
    racing a 2 ms ticker on a busy machine: tick p99 10-19 ms instead of 39-61 ms."""
    if sys.platform == "linux":  # per-thread niceness; elsewhere this would renice the process
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)


# The threads argon2 runs in: HASH_CONCURRENCY of them, shared by every event loop of the
# process; more requests queue here (a few hundred bytes each), not in memory-hungry hashes.
_executor = ThreadPoolExecutor(
    HASH_CONCURRENCY, thread_name_prefix="argon2", initializer=_lower_priority
)


async def hash_password_async(password: str) -> str:
    """`hash_password` in a hashing thread, at most HASH_CONCURRENCY at once per process."""
    return await asyncio.get_running_loop().run_in_executor(_executor, hash_password, password)


async def verify_password_async(password_hash: str, password: str) -> bool:
    """`verify_password` in a hashing thread, at most HASH_CONCURRENCY at once per process."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, verify_password, password_hash, password)


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    type: TokenType
    jti: str
    version: int  # the user's token_version when issued (access tokens)


def create_token(
    user_id: uuid.UUID,
    token_type: TokenType,
    secret: str,
    lifetime: timedelta,
    *,
    jti: str | None = None,
    version: int = 0,
) -> str:
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "type": token_type,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti or secrets.token_hex(8),
    }
    if token_type == "access":  # noqa: S105 - a token type, not a secret
        payload["ver"] = version
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def decode_token(
    token: str, secret: str, expected: TokenType, max_lifetime: timedelta
) -> TokenClaims | None:
    """The claims of a valid token of type `expected`; None for anything else.

    Besides the signature and expiry, the lifetime is capped: a token must say when it was issued
    (not in the future) and must not live longer than `max_lifetime` (the configured lifetime of
    its type). A token forged with a leaked secret and an `exp` in year 9999 is refused.
    """
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            # `iat` is checked below, with leeway for clock skew; `exp` is checked without.
            options={"require": ["exp", "iat", "sub", "type", "jti"], "verify_iat": False},
        )
        issued = float(payload["iat"])
        expires = float(payload["exp"])
        now = datetime.now(UTC).timestamp()
        if issued > now + TOKEN_LEEWAY.total_seconds():
            return None
        if expires - issued > (max_lifetime + TOKEN_LEEWAY).total_seconds():
            return None
        if payload["type"] != expected:
            return None
        version = payload.get("ver", 0)
        if not isinstance(version, int) or not isinstance(payload["jti"], str):
            return None
        return TokenClaims(
            user_id=uuid.UUID(payload["sub"]), type=expected, jti=payload["jti"], version=version
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None


def new_api_key() -> tuple[str, str, str]:
    """(secret shown once, prefix kept for display, SHA-256 kept for lookup)."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[: len(API_KEY_PREFIX) + 8], hash_api_key(secret)


def hash_api_key(secret: str) -> str:
    # The secret has 256 random bits: a fast hash is enough and allows an indexed lookup.
    return hashlib.sha256(secret.encode()).hexdigest()


def email_digest(email: str) -> str:
    """A stable pseudonym for an email in logs and rate-limit keys (the address is not stored)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
