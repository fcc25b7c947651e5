"""Login and registration limits: per account and per client address, counted in the database,
answered 429 `rate_limited` with Retry-After; failed logins are logged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager

from tests.auth.helpers import PASSWORD, count_rows, login
from tests.conftest import make_settings, register
from verbatim.app import create_app
from verbatim.engines.process_pool import EnginePool

LIMITS = {
    "login_rate_per_account": 3,
    "login_rate_per_address": 6,
    "register_rate_per_address": 3,
}


def _client(app: object, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://verbatim.test", timeout=60)


@pytest.fixture
async def limited_app(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> AsyncIterator[object]:
    settings = make_settings(tmp_path, database_url, **LIMITS)
    app = create_app(settings, with_worker=False, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        yield manager.app


async def test_failed_logins_per_account(limited_app: object) -> None:
    async with _client(limited_app, "10.0.0.1") as a, _client(limited_app, "10.0.0.2") as b:
        await register(a, "target@example.com")  # one successful login: not a failure
        codes = [(await login(a, "target@example.com", "wrong")).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        # The fourth failure, from another address, and even the right password: 429.
        for client, password in ((b, "wrong"), (a, PASSWORD)):
            r = await login(client, "target@example.com", password)
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "rate_limited"
            retry_after = int(r.headers["Retry-After"])
            assert 1 <= retry_after <= 900
            assert r.json()["error"]["details"]["retry_after_s"] == retry_after
        # Another account is not affected.
        await register(b, "other@example.com")


async def test_logins_per_address(limited_app: object) -> None:
    async with _client(limited_app, "10.0.0.3") as a, _client(limited_app, "10.0.0.4") as b:
        # Six different accounts from one address, one attempt each.
        codes = [(await login(a, f"nobody{i}@example.com", "wrong")).status_code for i in range(7)]
        assert codes == [401] * 6 + [429]
        r = await login(b, "nobody0@example.com", "wrong")  # another address still may
        assert r.status_code == 401


async def test_registrations_per_address(limited_app: object) -> None:
    from verbatim.models import User

    async with _client(limited_app, "10.0.0.5") as a, _client(limited_app, "10.0.0.6") as b:
        for i in range(3):
            body = {"email": f"r{i}@example.com", "password": "long enough"}
            assert (await a.post("/api/v1/auth/register", json=body)).status_code == 201
        r = await a.post(
            "/api/v1/auth/register", json={"email": "r9@example.com", "password": "long enough"}
        )
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) > 0
        assert await count_rows(User) == 3  # nothing stored for the refused one
        body = {"email": "r9@example.com", "password": "long enough"}
        assert (await b.post("/api/v1/auth/register", json=body)).status_code == 201


async def test_concurrent_failures_never_pass_the_limit(limited_app: object) -> None:
    """Counted atomically in the database: 8 at once get exactly `limit` tries."""
    async with _client(limited_app, "10.0.0.7") as a:
        await register(a, "burst@example.com")
    clients = [_client(limited_app, f"10.0.1.{i}") for i in range(8)]
    try:
        results = await asyncio.gather(
            *(login(c, "burst@example.com", f"wrong {i}") for i, c in enumerate(clients))
        )
    finally:
        for c in clients:
            await c.aclose()
    codes = sorted(r.status_code for r in results)
    assert codes == [401] * 3 + [429] * 5


async def test_counters_are_shared_by_every_api_process(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    """Two apps (two API processes) on one database see one count."""
    apps = [
        create_app(
            make_settings(tmp_path / str(i), database_url, **LIMITS),
            with_worker=False,
            engine_pool=engine_pool,
        )
        for i in range(2)
    ]
    async with (
        LifespanManager(apps[0]) as one,
        LifespanManager(apps[1]) as two,
        _client(one.app, "10.0.0.8") as a,
        _client(two.app, "10.0.0.8") as b,
    ):
        await register(a, "shared@example.com")
        codes = []
        for client in (a, b, a, b):
            codes.append((await login(client, "shared@example.com", "wrong")).status_code)
        assert codes == [401, 401, 401, 429]


async def test_failed_logins_are_logged_without_the_password(limited_app: object) -> None:
    from verbatim.auth.security import email_digest

    async with _client(limited_app, "10.0.0.9") as a:
        await register(a, "logged@example.com")
        with structlog.testing.capture_logs() as logs:
            await login(a, "logged@example.com", "hunter2 secret")
            await login(a, "ghost@example.com", "hunter2 secret")
    failed = [e for e in logs if e["event"] == "login_failed"]
    assert [e["reason"] for e in failed] == ["wrong_password", "unknown_email"]
    assert failed[0]["email_hash"] == email_digest("logged@example.com")
    assert all(e["address"] == "10.0.0.9" for e in failed)
    assert failed[0]["user_id"] and failed[1]["user_id"] is None
    assert "hunter2" not in repr(logs)


async def test_stale_counters_are_pruned(limited_app: object) -> None:
    """Counters whose window passed are deleted a few at a time by later hits, kind by kind."""
    from sqlalchemy import insert, text

    from verbatim.models import RateLimit
    from verbatim.services import get_services

    async with get_services().sessionmaker() as session:
        await session.execute(
            insert(RateLimit),
            [{"key": f"login:address:10.9.0.{i}", "count": 5} for i in range(3)],
        )
        await session.execute(insert(RateLimit), [{"key": "register:address:10.9.1.1", "count": 1}])
        await session.execute(
            text("UPDATE rate_limit SET window_start = now() - interval '2 days'")
        )
        await session.commit()
    async with _client(limited_app, "10.0.0.10") as a:
        await login(a, "nobody@example.com", "wrong")
    assert await count_rows(RateLimit, RateLimit.key.like("login:address:10.9.%")) == 0
    # A registration counter is judged by the registration window (1 h): 2 days old, but only a
    # registration hit prunes it.
    assert await count_rows(RateLimit, RateLimit.key == "register:address:10.9.1.1") == 1
    assert await count_rows(RateLimit, RateLimit.key == "login:address:10.0.0.10") == 1
