"""Requests hold no database connection, and no row lock, while a body streams (issue 7, §2).

Slow clients are driven through the in-process ASGI transport with request bodies that stall
(an async generator waiting on an event): the app really waits in `receive`, as it would on a
socket, and every other request runs on the same event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.conftest import FIXTURES, ApiUser, make_settings, register
from verbatim.config import Settings
from verbatim.services import get_services

STALL_S = 60.0  # longer than any test waits: the body only goes on when the test says so


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


class StalledBody:
    """A multipart body of `path` that sends its first `head` bytes, then waits for `release`."""

    def __init__(self, path: Path, head: int = 1000) -> None:
        self.boundary = f"stall-{uuid.uuid4().hex}"
        preamble = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        self.data = preamble + path.read_bytes() + f"\r\n--{self.boundary}--\r\n".encode()
        self.head = head
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(len(self.data)),
        }

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.data[: self.head]
        self.started.set()
        await asyncio.wait_for(self.release.wait(), STALL_S)
        yield self.data[self.head :]


async def idle_in_transaction(database_url: str) -> int:
    """Connections of the test's database sitting idle inside an open transaction."""
    name = urlsplit(database_url).path.lstrip("/")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND state LIKE 'idle in transaction%%'",
            (name,),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def timed(request: Any, limit_s: float) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await asyncio.wait_for(request, limit_s)
    return response, time.perf_counter() - started


@pytest.mark.slow
async def test_stalled_uploads_do_not_block_other_users(
    alice: ApiUser, bob: ApiUser, settings: Settings, database_url: str
) -> None:
    """30 uploads that stall after their headers: more than the pool (10 + 10 overflow) holds.
    Another user's listing still answers at once, and no connection idles in a transaction."""
    bodies = [StalledBody(FIXTURES / "speech.wav") for _ in range(30)]
    uploads = [
        asyncio.create_task(
            alice.post("/api/v1/audio", content=body.chunks(), headers=body.headers)
        )
        for body in bodies
    ]
    try:
        # Every upload is authenticated and reading its body (or blocked before it).
        await asyncio.wait([asyncio.create_task(b.started.wait()) for b in bodies], timeout=10)
        await asyncio.sleep(0.5)
        r, elapsed = await timed(bob.get("/api/v1/audio"), 5.0)
        assert r.status_code == 200, r.text
        assert elapsed < 2.0
        assert all(b.started.is_set() for b in bodies)
        assert await idle_in_transaction(database_url) == 0
    finally:
        for body in bodies:
            body.release.set()
    responses = await asyncio.wait_for(asyncio.gather(*uploads), 60)
    # The same bytes 30 times: one is stored, the others are its duplicates.
    assert sorted(r.status_code for r in responses) == [200] * 29 + [201], [
        r.text for r in responses if r.status_code not in (200, 201)
    ]


async def _api_key(user: ApiUser) -> tuple[str, str]:
    r = await user.post("/api/v1/api-keys", json={"name": "ci"})
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["id"]


async def _key_row(database_url: str, key_id: str) -> tuple[Any, int]:
    """(last_used_at, xmin): xmin changes with every UPDATE of the row."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT last_used_at, xmin::text::bigint FROM api_key WHERE id = %s", (key_id,)
        )
        row = await cur.fetchone()
        assert row is not None
        return row[0], int(row[1])


async def test_same_api_key_requests_do_not_wait_on_each_other(
    alice: ApiUser, app_client: httpx.AsyncClient, database_url: str
) -> None:
    secret, key_id = await _api_key(alice)
    with_key = {"X-API-Key": secret}

    # A long upload with the key, stalled mid-body; the same key meanwhile works at once.
    body = StalledBody(FIXTURES / "speech.wav")
    upload = asyncio.create_task(
        app_client.post(
            "/api/v1/audio", content=body.chunks(), headers={**body.headers, **with_key}
        )
    )
    try:
        await asyncio.wait_for(body.started.wait(), 10)
        r, elapsed = await timed(app_client.get("/api/v1/audio", headers=with_key), 5.0)
        assert r.status_code == 200 and elapsed < 2.0
        assert await idle_in_transaction(database_url) == 0
    finally:
        body.release.set()
    r = await asyncio.wait_for(upload, 60)
    assert r.status_code == 201, r.text

    # Use is recorded at most once a minute: a second request leaves the row alone.
    used_at, xmin = await _key_row(database_url, key_id)
    assert used_at is not None
    r = await app_client.get("/api/v1/audio", headers=with_key)
    assert r.status_code == 200
    assert await _key_row(database_url, key_id) == (used_at, xmin)

    # Another transaction holding the key's row lock (as a request of the old code did
    # through store_media and complete_upload) delays nobody: the update is skipped.
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await holder.execute("UPDATE api_key SET last_used_at = NULL WHERE id = %s", (key_id,))
        await holder.commit()
        await holder.execute("SELECT 1 FROM api_key WHERE id = %s FOR UPDATE", (key_id,))
        r, elapsed = await timed(app_client.get("/api/v1/audio", headers=with_key), 5.0)
        assert r.status_code == 200 and elapsed < 2.0
        await holder.rollback()
    # Once the lock is gone, the next request records the use.
    r = await app_client.get("/api/v1/audio", headers=with_key)
    assert r.status_code == 200
    assert (await _key_row(database_url, key_id))[0] is not None


@pytest.fixture
def tiny_pool_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, database_pool_size=1, database_pool_timeout_s=0.5)


async def test_pool_exhaustion_is_503_with_retry_after(
    tiny_pool_settings: Settings, engine_pool: Any
) -> None:
    from asgi_lifespan import LifespanManager

    from verbatim.app import create_app

    app = create_app(tiny_pool_settings, with_worker=False, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://verbatim.test") as c:
            user = await register(c)
            engine = get_services().engine
            held = [await engine.connect() for _ in range(2)]  # pool 1 + overflow 1
            try:
                r, elapsed = await timed(user.get("/api/v1/audio"), 10.0)
            finally:
                for conn in held:
                    await conn.close()
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "database_busy"
            assert int(r.headers["retry-after"]) >= 1
            assert elapsed < 5.0
            r = await user.get("/api/v1/audio")
            assert r.status_code == 200


@pytest.fixture
def impatient_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        body_idle_timeout_s=1.0,
        multipart_threshold_bytes=5 * 1024 * 1024,
        multipart_part_size_bytes=5 * 1024 * 1024,
    )


def _temp_files(settings: Settings) -> list[Path]:
    """Temporary files, and any file in storage but a multipart upload's own `key` record."""
    found = [p for p in settings.tmp_dir.rglob("*") if p.is_file()]
    stored = [p for p in settings.media_dir.rglob("*") if p.is_file()]
    return found + [p for p in stored if not (p.name == "key" and ".multipart" in p.parts)]


@pytest.mark.slow
async def test_stalled_body_times_out_with_408_and_leaves_nothing(
    impatient_settings: Settings, engine_pool: Any
) -> None:
    from asgi_lifespan import LifespanManager
    from sqlalchemy import func, select

    from verbatim.app import create_app
    from verbatim.models import AudioFile

    app = create_app(impatient_settings, with_worker=False, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://verbatim.test", timeout=30
        ) as c:
            user = await register(c)

            # The multipart upload.
            body = StalledBody(FIXTURES / "speech.wav", head=5000)
            r, elapsed = await timed(
                user.post("/api/v1/audio", content=body.chunks(), headers=body.headers), 15.0
            )
            assert r.status_code == 408, r.text
            assert r.json()["error"]["code"] == "request_timeout"
            assert elapsed < 5.0
            async with get_services().sessionmaker() as session:
                rows = await session.scalar(select(func.count()).select_from(AudioFile))
            assert rows == 0
            assert _temp_files(impatient_settings) == []

            # A JSON body, read by FastAPI itself.
            async def stalled_json() -> AsyncIterator[bytes]:
                yield b'{"filename": "a.wav", '
                await asyncio.sleep(STALL_S)

            r, elapsed = await timed(
                user.post(
                    "/api/v1/uploads",
                    content=stalled_json(),
                    headers={"Content-Type": "application/json", "Content-Length": "100"},
                ),
                15.0,
            )
            assert r.status_code == 408, r.text
            assert r.json()["error"]["code"] == "request_timeout"

            # The local presigned PUT (single object, then a multipart part).
            data = (FIXTURES / "speech.wav").read_bytes()
            for size in (len(data), 6 * 1024 * 1024):
                r = await user.post("/api/v1/uploads", json={"filename": "a.wav", "size": size})
                assert r.status_code == 201, r.text
                upload = r.json()
                url = upload["url"] or upload["multipart"]["parts"][0]["url"]
                stalled = StalledBody(FIXTURES / "speech.wav", head=5000)
                r, elapsed = await timed(c.put(url, content=stalled.chunks()), 15.0)
                assert r.status_code == 408, r.text
                assert r.json()["error"]["code"] == "request_timeout"
                assert elapsed < 5.0
                assert _temp_files(impatient_settings) == []


async def test_concurrent_completes_of_one_upload_agree(alice: ApiUser, settings: Settings) -> None:
    """complete_upload no longer serialises on the upload's row lock while it works: two
    completes at once both succeed with the same audio file, stored once."""
    from sqlalchemy import func, select

    from tests.uploads.test_direct_upload import create, put
    from verbatim.models import AudioFile

    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "twice.wav", len(data))
    r = await put(alice, upload["url"], data)
    assert r.status_code == 200, r.text
    first, second = await asyncio.gather(
        alice.post(upload["complete_url"]), alice.post(upload["complete_url"])
    )
    assert sorted([first.status_code, second.status_code]) == [200, 201], (
        first.text,
        second.text,
    )
    assert first.json()["id"] == second.json()["id"]
    async with get_services().sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(AudioFile)) == 1
    state = (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()
    assert state["status"] == "completed" and state["audio_file_id"] == first.json()["id"]
    stored = [p for p in settings.media_dir.rglob("*") if p.is_file()]
    assert [p.read_bytes() == data for p in stored] == [True]
