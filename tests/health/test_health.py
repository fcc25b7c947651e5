from __future__ import annotations

import asyncio
import shutil
import time

import httpx

from verbatim.config import Settings


async def test_live_and_ready(app_client: httpx.AsyncClient) -> None:
    r = await app_client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    # Both in-process workers (transcriptions, default) register within moments of start-up.
    deadline = time.monotonic() + 15
    while True:
        r = await app_client.get("/health/ready")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["checks"]["queue"]["live_workers"] == 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == {"database", "queue", "storage", "model"}
    assert all(c["status"] == "ok" for c in checks.values())
    assert checks["model"]["model"] == "tiny.en"
    assert checks["queue"]["live_workers"] == 2  # transcriptions + default, in-process


async def test_ready_reports_a_broken_component(
    app_client: httpx.AsyncClient, settings: Settings
) -> None:
    # The media directory is replaced by a file: storage is no longer writable.
    shutil.rmtree(settings.media_dir)
    settings.media_dir.write_text("not a directory")
    r = await app_client.get("/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "error"
    assert body["checks"]["storage"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    settings.media_dir.unlink()
    settings.media_dir.mkdir()


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
