"""Quotas per tenant: refused before work is queued with `quota_exceeded` (which quota, the
limit, what is used, the reset time), nothing stored; race-free across API processes (two
apps with their own connection pools on one database, requests fired at once)."""

from __future__ import annotations

import asyncio
import math
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from asgi_lifespan import LifespanManager

from tests.conftest import ApiUser, make_settings, register
from tests.tenancy.helpers import create_org, in_tenant
from verbatim.app import create_app
from verbatim.engines.process_pool import EnginePool


def tone(path: Path, hz: float, seconds: float = 0.5) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    samples = (np.sin(2 * math.pi * hz * t) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return path


@asynccontextmanager
async def two_processes(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two API apps (separate pools, as two processes would have) on one database, with no
    worker, so queued jobs stay queued."""
    settings = make_settings(tmp_path, database_url, **overrides)
    apps = [create_app(settings, with_worker=False, engine_pool=engine_pool) for _ in range(2)]
    async with LifespanManager(apps[0]) as m1, LifespanManager(apps[1]) as m2:
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=m.app), base_url="http://verbatim.test"
            )
            for m in (m1, m2)
        ]
        async with clients[0], clients[1]:
            yield clients[0], clients[1]


def as_client(user: ApiUser, client: httpx.AsyncClient) -> ApiUser:
    return ApiUser(client, user.email, user.headers["Authorization"].removeprefix("Bearer "))


def sql(database_url: str, statement: str, params: dict[str, Any] | None = None) -> Any:
    """One statement on its own connection (the apps here run no worker, so no services
    object is registered for the process)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        cur = conn.execute(statement, params or {})
        return cur.fetchone() if cur.description else None


async def test_uploads_per_hour_at_the_boundary_across_processes(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    files = [tone(tmp_path / f"t{i}.wav", 200 + 40 * i) for i in range(8)]
    async with two_processes(tmp_path, database_url, engine_pool) as (c1, c2):
        owner = await register(c1, "owner@example.com")
        org = await create_org(owner, "Quota Org")
        sql(
            database_url,
            "UPDATE tenant SET quota_uploads_per_hour = 3 WHERE id = %(id)s",
            {"id": org},
        )
        users = [as_client(owner, c1), as_client(owner, c2)]

        async def upload(i: int) -> httpx.Response:
            with files[i].open("rb") as fh:
                data = fh.read()
            return await users[i % 2].post(
                "/api/v1/audio",
                headers=in_tenant(org),
                files={"file": (files[i].name, data, "audio/wav")},
            )

        answers = await asyncio.gather(*(upload(i) for i in range(8)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 3 + [429] * 5, [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 429)
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"]["quota"] == "uploads_per_hour"
    assert error["details"]["limit"] == 3
    assert error["details"]["reset_at"] is not None
    assert int(refused.headers["Retry-After"]) > 3000
    assert sql(
        database_url, "SELECT count(*) FROM audio_file WHERE tenant_id = %(t)s", {"t": org}
    ) == (3,)
    # Nothing of the refused uploads was kept in storage either.
    stored = [p for p in (tmp_path / "data" / "media").rglob("*") if p.is_file()]
    assert len(stored) == 3, stored


async def test_concurrent_jobs_at_the_boundary_across_processes(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    async with two_processes(tmp_path, database_url, engine_pool, quota_concurrent_jobs=2) as (
        c1,
        c2,
    ):
        owner = await register(c1, "owner@example.com")
        files = [tone(tmp_path / f"t{i}.wav", 300 + 50 * i) for i in range(6)]
        audio_ids = []
        for f in files:
            r = await owner.upload(f)
            assert r.status_code == 201, r.text
            audio_ids.append(r.json()["id"])
        users = [as_client(owner, c1), as_client(owner, c2)]
        answers = await asyncio.gather(
            *(
                users[i % 2].post(f"/api/v1/audio/{aid}/transcriptions", json={})
                for i, aid in enumerate(audio_ids)
            )
        )
    codes = sorted(r.status_code for r in answers)
    assert codes == [202, 202, 429, 429, 429, 429], [r.text for r in answers]
    error = next(r for r in answers if r.status_code == 429).json()["error"]
    assert error["details"]["quota"] == "concurrent_jobs"
    assert error["details"]["limit"] == 2 and error["details"]["used"] == 2
    assert sql(database_url, "SELECT count(*) FROM job") == (2,)


async def test_storage_and_minutes_quotas_are_402_and_store_nothing(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    small = tone(tmp_path / "small.wav", 440, 0.5)  # 16 KB
    big = tone(tmp_path / "big.wav", 550, 3.0)  # 96 KB
    async with two_processes(
        tmp_path,
        database_url,
        engine_pool,
        quota_storage_bytes=60_000,
        quota_audio_minutes_per_month=1,
    ) as (c1, _):
        owner = await register(c1, "owner@example.com")
        r = await owner.upload(small)
        assert r.status_code == 201, r.text
        small_id = r.json()["id"]
        r = await owner.upload(big)
        assert r.status_code == 402, r.text
        error = r.json()["error"]
        assert error["code"] == "quota_exceeded"
        assert error["details"]["quota"] == "storage_bytes"
        assert error["details"]["limit"] == 60_000
        assert error["details"]["used"] == small.stat().st_size
        assert sql(database_url, "SELECT count(*) FROM audio_file") == (1,)
        # Minutes: 0.5 s fits in the minute; a declared hour does not.
        r = await owner.post(f"/api/v1/audio/{small_id}/transcriptions", json={})
        assert r.status_code == 202, r.text
        sql(database_url, "UPDATE audio_file SET duration = 3600")
        r = await owner.post(f"/api/v1/audio/{small_id}/transcriptions", json={})
        assert r.status_code == 402, r.text
        details = r.json()["error"]["details"]
        assert details["quota"] == "audio_minutes_per_month" and details["limit"] == 1
        assert details["reset_at"].endswith("+00:00") and "-01T00:00:00" in details["reset_at"]
        assert sql(database_url, "SELECT count(*) FROM job") == (1,)
        # The tenant's usage view shows what was counted.
        me = (await owner.get("/api/v1/auth/me")).json()
        r = await owner.get(f"/api/v1/tenants/{me['tenant_id']}/usage")
        assert r.status_code == 200, r.text
        usage = r.json()
        assert usage["storage_bytes"] == small.stat().st_size
        assert usage["limits"]["storage_bytes"] == 60_000
        assert usage["active_jobs"] == 1
