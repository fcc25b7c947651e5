"""VERBATIM_REGISTRATION=open|closed, and accounts created by an administrator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.auth.helpers import bearer, count_rows, tokens
from tests.conftest import ApiUser, make_settings, register
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.engines.process_pool import EnginePool


def test_registration_default_depends_on_the_environment() -> None:
    secret = "s" * 40
    assert Settings(env="development").registration == "open"
    assert Settings(env="test").registration == "open"
    assert Settings(env="production", secret_key=secret).registration == "closed"
    assert Settings(env="production", secret_key=secret, registration="open").registration_open
    assert Settings(env="development", registration="closed").registration == "closed"
    # The old boolean is still honoured.
    assert Settings(env="development", allow_registration=False).registration == "closed"
    with pytest.raises(ValueError):
        Settings(registration="maybe")  # type: ignore[arg-type]


@pytest.fixture
async def closed_client(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, database_url, registration="closed")
    app = create_app(settings, with_worker=False, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://verbatim.test") as c:
            yield c


async def _make_admin(email: str, password: str) -> None:
    from verbatim.auth.service import create_user
    from verbatim.db import session_scope
    from verbatim.models import Role
    from verbatim.services import get_services

    async with session_scope(get_services().sessionmaker) as session:
        await create_user(session, email, password, Role.admin)


async def test_closed_registration_refuses_and_stores_nothing(
    closed_client: httpx.AsyncClient,
) -> None:
    from verbatim.models import User

    r = await closed_client.post(
        "/api/v1/auth/register", json={"email": "eve@example.com", "password": "long enough"}
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "registration_closed"
    assert await count_rows(User) == 0


async def test_admin_creates_accounts_when_registration_is_closed(
    closed_client: httpx.AsyncClient,
) -> None:
    from verbatim.models import User

    await _make_admin("root@example.com", "admin password")
    admin = await tokens(closed_client, "root@example.com", "admin password")
    r = await closed_client.post(
        "/api/v1/admin/users",
        json={"email": "New@Example.com", "password": "first password"},
        headers=bearer(admin["access_token"]),
    )
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "new@example.com" and r.json()["role"] == "user"
    new = await tokens(closed_client, "new@example.com", "first password")

    # Bad input: 4xx with a code, nothing stored.
    before = await count_rows(User)
    bad = [
        ({"email": "x@example.com", "password": "short"}, 422, "validation_error"),
        ({"email": "not-an-email", "password": "long enough"}, 422, "validation_error"),
        (
            {"email": "x@example.com", "password": "long enough", "role": "root"},
            422,
            "validation_error",
        ),
        ({"email": "NEW@example.com", "password": "long enough"}, 409, "email_taken"),
    ]
    for body, status, code in bad:
        r = await closed_client.post(
            "/api/v1/admin/users", json=body, headers=bearer(admin["access_token"])
        )
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), body
    # A plain user, an anonymous caller and an API key of the admin cannot.
    r = await closed_client.post(
        "/api/v1/admin/users",
        json={"email": "y@example.com", "password": "long enough"},
        headers=bearer(new["access_token"]),
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "admin_required"
    r = await closed_client.post(
        "/api/v1/admin/users", json={"email": "y@example.com", "password": "long enough"}
    )
    assert r.status_code == 401
    key = (
        await closed_client.post(
            "/api/v1/api-keys", json={"name": "ops"}, headers=bearer(admin["access_token"])
        )
    ).json()["key"]
    r = await closed_client.post(
        "/api/v1/admin/users",
        json={"email": "y@example.com", "password": "long enough"},
        headers={"X-API-Key": key},
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "password_session_required"
    assert await count_rows(User) == before


async def test_open_registration_still_works(app_client: httpx.AsyncClient) -> None:
    user: ApiUser = await register(app_client, "open@example.com")
    assert (await user.get("/api/v1/auth/me")).status_code == 200
