"""Signed, expiring URLs for the local backend, so a client written for S3 works on a laptop.

A token is `base64url(claims JSON) . base64url(HMAC-SHA256(claims))`. The key is derived from the
service secret for this one purpose, so a token can never pass for a JWT or the other way round.
The signature is checked before anything in the claims is believed (expiry included).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from verbatim.errors import Forbidden

URL_PREFIX = "/api/v1/storage/local/"


class SignatureInvalid(Forbidden):
    code = "signature_invalid"
    message = "The URL signature is not valid"


class SignatureExpired(Forbidden):
    code = "signature_expired"
    message = "The URL has expired"


@dataclass(frozen=True)
class Claims:
    method: str  # GET or PUT
    key: str
    expires: int  # unix seconds
    upload_id: str | None = None  # multipart part uploads only
    part: int | None = None
    max_bytes: int | None = None  # PUT: the body may not be larger
    filename: str | None = None  # GET: Content-Disposition
    content_type: str | None = None  # GET: Content-Type
    inline: bool = True


def derive_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"verbatim/local-presigned-url/v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, claims: Claims) -> str:
    body = {k: v for k, v in asdict(claims).items() if v is not None}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify(key: bytes, token: str, method: str, now: float | None = None) -> Claims:
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise SignatureInvalid()
    expected = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
    except ValueError as exc:
        raise SignatureInvalid() from exc
    if not hmac.compare_digest(expected, given):
        raise SignatureInvalid()
    try:
        raw: dict[str, Any] = json.loads(_unb64(payload))
        claims = Claims(**raw)
    except (ValueError, TypeError) as exc:
        raise SignatureInvalid() from exc
    if claims.method != method:
        raise SignatureInvalid("This URL is signed for another method")
    if (now if now is not None else time.time()) >= claims.expires:
        raise SignatureExpired()
    return claims
