"""Password hashing (argon2id), JWT access/refresh tokens and API key secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
API_KEY_PREFIX = "vbk_"
_ALGORITHM = "HS256"

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


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    type: TokenType


def create_token(
    user_id: uuid.UUID, token_type: TokenType, secret: str, lifetime: timedelta
) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": str(user_id),
        "type": token_type,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def decode_token(token: str, secret: str) -> TokenClaims | None:
    try:
        payload = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["exp"]})
        return TokenClaims(user_id=uuid.UUID(payload["sub"]), type=payload["type"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def new_api_key() -> tuple[str, str, str]:
    """(secret shown once, prefix kept for display, SHA-256 kept for lookup)."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[: len(API_KEY_PREFIX) + 8], hash_api_key(secret)


def hash_api_key(secret: str) -> str:
    # The secret has 256 random bits: a fast hash is enough and allows an indexed lookup.
    return hashlib.sha256(secret.encode()).hexdigest()
