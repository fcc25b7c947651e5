"""The local backend's URL signatures: nothing in a token is believed before its HMAC checks."""

from __future__ import annotations

import base64
import json
import time

import pytest

from verbatim.storage import presign
from verbatim.storage.presign import Claims, SignatureExpired, SignatureInvalid

KEY = presign.derive_key("a-secret-of-the-service-" + "x" * 20)


def token_for(**overrides: object) -> str:
    values: dict[str, object] = {
        "method": "PUT",
        "key": "staging/abc",
        "expires": int(time.time()) + 60,
        "max_bytes": 1000,
    }
    values.update(overrides)
    return presign.sign(KEY, Claims(**values))  # type: ignore[arg-type]


def test_round_trip() -> None:
    claims = presign.verify(KEY, token_for(upload_id="u1", part=3), "PUT")
    assert (claims.key, claims.upload_id, claims.part, claims.max_bytes) == (
        "staging/abc",
        "u1",
        3,
        1000,
    )


def test_expired() -> None:
    with pytest.raises(SignatureExpired) as err:
        presign.verify(KEY, token_for(expires=int(time.time()) - 1), "PUT")
    assert err.value.status_code == 403 and err.value.code == "signature_expired"


def _reencode(token: str, **changes: object) -> str:
    payload, _, signature = token.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + signature


@pytest.mark.parametrize(
    "changes",
    [
        {"key": "uploads/user_1/2026/11/someone_else.wav"},
        {"expires": 9_999_999_999},
        {"max_bytes": 10**12},
        {"part": 4},
    ],
)
def test_tampered_claims_are_refused(changes: dict[str, object]) -> None:
    forged = _reencode(token_for(part=3, upload_id="u1"), **changes)
    with pytest.raises(SignatureInvalid) as err:
        presign.verify(KEY, forged, "PUT")
    assert err.value.code == "signature_invalid"


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.", ".abc", "a.b.c", "!!!.???", "e30.AAAA"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(SignatureInvalid):
        presign.verify(KEY, token, "PUT")


def test_other_key_method_and_a_flipped_bit_are_refused() -> None:
    token = token_for()
    with pytest.raises(SignatureInvalid):
        presign.verify(presign.derive_key("another secret"), token, "PUT")
    with pytest.raises(SignatureInvalid):
        presign.verify(KEY, token, "GET")
    payload, _, signature = token.partition(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(SignatureInvalid):
        presign.verify(KEY, f"{payload}.{flipped}", "PUT")


def test_expiry_is_checked_only_after_the_signature() -> None:
    # An expired token with a forged signature says "invalid", not "expired".
    token = token_for(expires=int(time.time()) - 100)
    payload, _, _ = token.partition(".")
    with pytest.raises(SignatureInvalid):
        presign.verify(KEY, f"{payload}.AAAA", "PUT")
