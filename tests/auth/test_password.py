"""Password change: POST /api/v1/auth/password."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tests.auth.helpers import PASSWORD, bearer, login, tokens
from tests.conftest import ApiUser

NEW = "a brand new passphrase"


async def change(
    client: httpx.AsyncClient, headers: dict[str, str], current: str, new: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/password",
        json={"current_password": current, "new_password": new},
        headers=headers,
    )


async def _hash_of(email: str) -> str:
    from verbatim.models import User
    from verbatim.services import get_services

    async with get_services().sessionmaker() as session:
        value = await session.scalar(select(User.password_hash).where(User.email == email))
        assert value is not None
        return value


async def test_change_password_logs_out_every_other_session(alice: ApiUser, bob: ApiUser) -> None:
    client = alice.client
    other = await tokens(client, alice.email)
    bobs = await tokens(client, bob.email)

    r = await change(client, alice.headers, PASSWORD, NEW)
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert (await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))).is_success
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200

    # Every session from before is gone: refresh tokens and access tokens.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert r.status_code == 401
    r = await client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))
    assert r.status_code == 401
    assert (await alice.get("/api/v1/auth/me")).status_code == 401

    assert (await login(client, alice.email, PASSWORD)).status_code == 401
    assert (await login(client, alice.email, NEW)).status_code == 200
    # Bob is untouched.
    assert (await login(client, bob.email, PASSWORD)).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=bearer(bobs["access_token"]))).is_success


async def test_change_password_bad_input_changes_nothing(alice: ApiUser) -> None:
    client = alice.client
    before = await _hash_of(alice.email)
    r = await change(client, alice.headers, "not my password", NEW)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "wrong_password"
    r = await change(client, alice.headers, PASSWORD, "short")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    r = await change(client, alice.headers, PASSWORD, PASSWORD)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "password_unchanged"
    r = await alice.post("/api/v1/auth/password", json={"new_password": NEW})
    assert r.status_code == 422
    r = await change(client, {}, PASSWORD, NEW)
    assert r.status_code == 401
    assert await _hash_of(alice.email) == before
    assert (await alice.get("/api/v1/auth/me")).status_code == 200  # still logged in


async def test_change_password_needs_a_password_session(alice: ApiUser) -> None:
    client = alice.client
    key = (await alice.post("/api/v1/api-keys", json={"name": "script"})).json()["key"]
    before = await _hash_of(alice.email)
    for headers in ({"X-API-Key": key}, bearer(key)):
        r = await change(client, headers, PASSWORD, NEW)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "password_session_required"
    assert await _hash_of(alice.email) == before


async def test_wrong_current_passwords_are_rate_limited(alice: ApiUser) -> None:
    """Guessing through a stolen access token counts against the account like failed logins."""
    client = alice.client
    codes = [
        (await change(client, alice.headers, f"guess {i}", NEW)).status_code for i in range(11)
    ]
    assert codes == [403] * 10 + [429]
