from __future__ import annotations

import httpx
from sqlalchemy import func, select

from tests.conftest import ApiUser, register


async def test_register_login_me_refresh(app_client: httpx.AsyncClient) -> None:
    user = await register(app_client, "Carol@Example.com")
    me = await user.get("/api/v1/auth/me")
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == "carol@example.com"
    assert body["role"] == "user"
    assert body["tenant_id"]

    r = await app_client.post(
        "/api/v1/auth/login",
        json={"email": "carol@example.com", "password": "correct horse battery"},
    )
    refresh = r.json()["refresh_token"]
    r = await app_client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert r.status_code == 200
    new_access = r.json()["access_token"]
    me2 = await app_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {new_access}"})
    assert me2.json()["id"] == body["id"]


async def test_oauth2_password_form_login(app_client: httpx.AsyncClient) -> None:
    await register(app_client, "form@example.com")
    r = await app_client.post(
        "/api/v1/auth/login/form",
        data={"username": "form@example.com", "password": "correct horse battery"},
    )
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer"


async def test_refresh_token_is_not_an_access_token(app_client: httpx.AsyncClient) -> None:
    await register(app_client, "dave@example.com")
    r = await app_client.post(
        "/api/v1/auth/login",
        json={"email": "dave@example.com", "password": "correct horse battery"},
    )
    refresh = r.json()["refresh_token"]
    me = await app_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {refresh}"})
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "invalid_token"
    access = r.json()["access_token"]
    r = await app_client.post("/api/v1/auth/refresh", json={"refresh_token": access})
    assert r.status_code == 401


async def test_bad_credentials_and_tokens(app_client: httpx.AsyncClient) -> None:
    await register(app_client, "erin@example.com")
    r = await app_client.post(
        "/api/v1/auth/login", json={"email": "erin@example.com", "password": "wrong password"}
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_credentials"
    r = await app_client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever123"}
    )
    assert r.json()["error"]["code"] == "invalid_credentials"
    r = await app_client.get("/api/v1/auth/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"
    r = await app_client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401
    assert r.json()["error"]["request_id"]


async def test_register_validation_and_duplicates(app_client: httpx.AsyncClient) -> None:
    r = await app_client.post(
        "/api/v1/auth/register", json={"email": "x@example.com", "password": "short"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    r = await app_client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": "long enough"}
    )
    assert r.status_code == 422
    await register(app_client, "frank@example.com")
    r = await app_client.post(
        "/api/v1/auth/register", json={"email": "FRANK@example.com", "password": "another password"}
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "email_taken"


async def test_password_is_stored_as_argon2id(app_client: httpx.AsyncClient) -> None:
    await register(app_client, "grace@example.com")
    from verbatim.models import User
    from verbatim.services import get_services

    async with get_services().sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == "grace@example.com"))
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash


async def test_api_keys_create_list_use_revoke(alice: ApiUser, bob: ApiUser) -> None:
    r = await alice.post("/api/v1/api-keys", json={"name": "laptop"})
    assert r.status_code == 201
    created = r.json()
    secret = created["key"]
    assert secret.startswith("vbk_") and created["prefix"] == secret[:12]

    page = (await alice.get("/api/v1/api-keys")).json()
    listed = page["items"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert page["total"] == 1
    assert "key" not in listed[0]

    client = alice.client
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {secret}"}):
        me = await client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["email"] == "alice@example.com"

    # Another user can neither see nor revoke it.
    assert (await bob.get("/api/v1/api-keys")).json()["items"] == []
    r = await bob.delete(f"/api/v1/api-keys/{created['id']}")
    assert r.status_code == 404
    assert (await client.get("/api/v1/auth/me", headers={"X-API-Key": secret})).status_code == 200

    r = await alice.delete(f"/api/v1/api-keys/{created['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"]
    me = await client.get("/api/v1/auth/me", headers={"X-API-Key": secret})
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "invalid_api_key"


async def test_api_key_bad_input_stores_nothing(alice: ApiUser) -> None:
    from verbatim.models import ApiKey
    from verbatim.services import get_services

    r = await alice.post("/api/v1/api-keys", json={"name": ""})
    assert r.status_code == 422
    r = await alice.post("/api/v1/api-keys", json={})
    assert r.status_code == 422
    async with get_services().sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == 0
