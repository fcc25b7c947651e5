from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import psycopg

from tests.conftest import ApiUser, register
from verbatim import embedded_db
from verbatim.config import Settings


async def make_admin(user: ApiUser, settings: Settings) -> None:
    assert settings.database_url
    with psycopg.connect(embedded_db.to_libpq_url(settings.database_url)) as conn:
        conn.execute("UPDATE \"user\" SET role = 'admin' WHERE email = %s", (user.email,))


def dir_mtimes(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in [root, *root.rglob("*")] if p.is_dir()}


async def test_live_and_ready(app_client: httpx.AsyncClient, settings: Settings) -> None:
    r = await app_client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await app_client.get("/health/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ok",
        "checks": {name: {"status": "ok"} for name in ("database", "queue", "storage", "model")},
    }
    # The details are for admins. The three in-process workers (transcriptions, cloud
    # transcriptions, default) register within moments of start-up.
    admin = await register(app_client)
    await make_admin(admin, settings)
    deadline = time.monotonic() + 15
    while True:
        r = await admin.get("/api/v1/admin/health", params={"refresh": "true"})
        assert r.status_code == 200, r.text
        body = r.json()
        if body["checks"]["queue"]["live_workers"] == 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == {"database", "queue", "storage", "model"}
    assert all(c["status"] == "ok" for c in checks.values())
    assert checks["model"]["model"] == "tiny.en"
    # transcriptions, cloud transcriptions and default, in-process
    assert checks["queue"]["live_workers"] == 3


async def test_ready_reports_a_broken_component_without_its_details(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    # The media directory is replaced by a file: storage is no longer writable.
    shutil.rmtree(settings.media_dir)
    settings.media_dir.write_text("not a directory")
    try:
        r = await app_client.get("/health/ready")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "error"
        assert body["checks"]["storage"] == {"status": "error"}
        assert body["checks"]["database"] == {"status": "ok"}
        # No exception text, paths or class names for anonymous callers.
        assert str(settings.data_dir) not in r.text
        assert "Error" not in r.text and "Errno" not in r.text
        # The admin view says what went wrong.
        admin = await register(app_client)
        await make_admin(admin, settings)
        r = await admin.get("/api/v1/admin/health")
        assert r.status_code == 200
        detail = r.json()
        assert detail["status"] == "error"
        assert detail["checks"]["storage"]["status"] == "error"
        assert "Error" in detail["checks"]["storage"]["error"]
    finally:
        settings.media_dir.unlink()
        settings.media_dir.mkdir()


async def test_ready_is_cached_and_does_not_write_to_storage_on_every_call(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    assert settings.health_cache_s >= 2  # the default, documented in configuration.md
    r = await app_client.get("/health/ready")
    assert r.status_code == 200
    before = dir_mtimes(settings.media_dir)
    await asyncio.sleep(0.05)
    for _ in range(10):
        assert (await app_client.get("/health/ready")).status_code == 200
    assert dir_mtimes(settings.media_dir) == before  # no write-check file came and went
    admin = await register(app_client)
    await make_admin(admin, settings)
    first = (await admin.get("/api/v1/admin/health")).json()
    assert first["age_s"] > 0  # the same cached report
    fresh = (await admin.get("/api/v1/admin/health", params={"refresh": "true"})).json()
    assert fresh["checked_at"] > first["checked_at"]
    assert dir_mtimes(settings.media_dir) != before  # an explicit refresh does probe


async def test_admin_health_needs_the_admin_role(app_client: httpx.AsyncClient) -> None:
    r = await app_client.get("/api/v1/admin/health")
    assert r.status_code == 401
    user = await register(app_client)
    r = await user.get("/api/v1/admin/health")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


async def test_unknown_routes_and_methods_use_the_error_shape(
    app_client: httpx.AsyncClient,
) -> None:
    r = await app_client.get("/api/v1/nothing-here", headers={"X-Request-ID": "my-request-1"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.json()["error"]["request_id"] == "my-request-1"
    assert r.headers["x-request-id"] == "my-request-1"
    r = await app_client.put("/health/live")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_openapi_documents_the_upload_form(app_client: httpx.AsyncClient) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    upload = spec["paths"]["/api/v1/audio"]["post"]
    schema = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["file"]["format"] == "binary"
    assert "/api/v1/auth/login/form" in spec["paths"]
