"""Refresh tokens rotate, are revocable (logout, log out everywhere) and a reused one revokes its
whole family; access tokens die with "log out everywhere"; token lifetimes are capped on decode."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt

from tests.auth.helpers import bearer, count_rows, tokens
from tests.conftest import ApiUser
from verbatim.config import Settings


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_a_spent_token_is_refused(alice: ApiUser) -> None:
    client = alice.client
    first = await tokens(client, alice.email)
    r = await refresh(client, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/auth/me", headers=bearer(second["access_token"]))).is_success

    # The spent token again: refused, and the family it belongs to is revoked with it.
    r = await refresh(client, first["refresh_token"])
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "token_reused"
    r = await refresh(client, second["refresh_token"])
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_token"


async def test_reuse_revokes_only_that_family(alice: ApiUser) -> None:
    client = alice.client
    laptop = await tokens(client, alice.email)
    phone = await tokens(client, alice.email)
    rotated = (await refresh(client, laptop["refresh_token"])).json()
    assert (await refresh(client, laptop["refresh_token"])).status_code == 401  # reuse
    assert (await refresh(client, rotated["refresh_token"])).status_code == 401
    # Another login (another family) keeps working.
    assert (await refresh(client, phone["refresh_token"])).status_code == 200


async def test_logout_revokes_the_family_only(alice: ApiUser, bob: ApiUser) -> None:
    from verbatim.models import RefreshToken

    client = alice.client
    laptop = await tokens(client, alice.email)
    phone = await tokens(client, alice.email)
    bobs = await tokens(client, bob.email)
    rotated = (await refresh(client, laptop["refresh_token"])).json()

    r = await client.post("/api/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert r.status_code == 204
    assert (await refresh(client, rotated["refresh_token"])).status_code == 401
    assert (await refresh(client, phone["refresh_token"])).status_code == 200
    assert (await refresh(client, bobs["refresh_token"])).status_code == 200
    # Logging out again is harmless.
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert r.status_code == 204
    assert await count_rows(RefreshToken, RefreshToken.revoked_at.is_not(None)) == 2


async def test_logout_bad_input(alice: ApiUser, settings: Settings) -> None:
    from verbatim.auth import security
    from verbatim.models import RefreshToken

    client = alice.client
    before = await count_rows(RefreshToken, RefreshToken.revoked_at.is_not(None))
    for body in ({}, {"refresh_token": ""}, {"refresh_token": 5}):
        r = await client.post("/api/v1/auth/logout", json=body)
        assert r.status_code == 422, body
    # Not a token; an access token; a well-signed refresh token of no stored row.
    access = (await tokens(client, alice.email))["access_token"]
    unknown = security.create_token(
        uuid.uuid4(),
        "refresh",
        settings.resolved_secret_key(),
        timedelta(days=1),
        jti=str(uuid.uuid4()),
    )
    for token in ("not.a.jwt", access, unknown):
        r = await client.post("/api/v1/auth/logout", json={"refresh_token": token})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_token"
    assert await count_rows(RefreshToken, RefreshToken.revoked_at.is_not(None)) == before


async def test_refresh_token_of_another_user_cannot_be_claimed(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    """A refresh token names its row; a token for Bob naming Alice's row is refused and Alice's
    session survives."""
    client = alice.client
    alices = await tokens(client, alice.email)
    row_id = jwt.decode(alices["refresh_token"], options={"verify_signature": False})["jti"]
    bob_id = (await bob.get("/api/v1/auth/me")).json()["id"]
    from verbatim.auth import security

    forged = security.create_token(
        uuid.UUID(bob_id), "refresh", settings.resolved_secret_key(), timedelta(days=1), jti=row_id
    )
    assert (await refresh(client, forged)).status_code == 401
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": forged})
    assert r.status_code == 401
    assert (await refresh(client, alices["refresh_token"])).status_code == 200


async def test_logout_all_revokes_refresh_and_access_tokens(alice: ApiUser, bob: ApiUser) -> None:
    client = alice.client
    one = await tokens(client, alice.email)
    two = await tokens(client, alice.email)
    bobs = await tokens(client, bob.email)

    r = await client.post("/api/v1/auth/logout-all", headers=bearer(one["access_token"]))
    assert r.status_code == 204
    for pair in (one, two):
        assert (await refresh(client, pair["refresh_token"])).status_code == 401
        r = await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_token"
    assert (await alice.get("/api/v1/auth/me")).status_code == 401  # the fixture's token too
    # Bob is untouched.
    assert (await client.get("/api/v1/auth/me", headers=bearer(bobs["access_token"]))).is_success
    assert (await refresh(client, bobs["refresh_token"])).status_code == 200
    # Logging in again works.
    fresh = await tokens(client, alice.email)
    assert (await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))).is_success


async def test_logout_all_needs_a_password_session(alice: ApiUser) -> None:
    client = alice.client
    pair = await tokens(client, alice.email)
    key = (await alice.post("/api/v1/api-keys", json={"name": "ci"})).json()["key"]
    r = await client.post("/api/v1/auth/logout-all", headers={"X-API-Key": key})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "password_session_required"
    assert (await client.post("/api/v1/auth/logout-all")).status_code == 401
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


def _forge(settings: Settings, user_id: str, **claims: object) -> str:
    payload: dict[str, object] = {
        "sub": user_id,
        "type": "access",
        "jti": "x",
        "ver": 0,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, settings.resolved_secret_key(), algorithm="HS256")


async def test_token_lifetime_is_capped_on_decode(alice: ApiUser, settings: Settings) -> None:
    """With the secret leaked, a token that lives until year 9999 is still refused."""
    client = alice.client
    user_id = (await alice.get("/api/v1/auth/me")).json()["id"]
    now = datetime.now(UTC)
    good = _forge(settings, user_id, iat=now, exp=now + timedelta(minutes=15))
    assert (await client.get("/api/v1/auth/me", headers=bearer(good))).status_code == 200

    forever = datetime(9999, 12, 31, tzinfo=UTC)
    refused = {
        "exp in 9999": _forge(settings, user_id, iat=now, exp=forever),
        "no iat": _forge(settings, user_id, exp=now + timedelta(minutes=10)),
        "iat in the future": _forge(
            settings, user_id, iat=now + timedelta(hours=1), exp=now + timedelta(hours=1, minutes=5)
        ),
        "a day-long access token": _forge(settings, user_id, iat=now, exp=now + timedelta(days=1)),
        "no exp": _forge(settings, user_id, iat=now),
    }
    for label, token in refused.items():
        r = await client.get("/api/v1/auth/me", headers=bearer(token))
        assert r.status_code == 401, label
        assert r.json()["error"]["code"] == "invalid_token", label

    long_refresh = jwt.encode(
        {"sub": user_id, "type": "refresh", "jti": str(uuid.uuid4()), "iat": now, "exp": forever},
        settings.resolved_secret_key(),
        algorithm="HS256",
    )
    assert (await refresh(client, long_refresh)).status_code == 401


def test_generated_secret_is_read_once(tmp_path: object) -> None:
    """The secret file is read on the first token check only, not on every one."""
    from pathlib import Path

    data_dir = Path(str(tmp_path)) / "data"
    settings = Settings(env="test", data_dir=data_dir, secret_key=None)
    first = settings.resolved_secret_key()
    (data_dir / "secret_key").unlink()  # a re-read would generate (and use) another secret
    assert settings.resolved_secret_key() == first
    assert not (data_dir / "secret_key").exists()
