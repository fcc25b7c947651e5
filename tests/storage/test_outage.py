"""S3 going away: every request that needs it answers 503 `storage_unavailable` after the
retries, and nothing is left half-stored (no row, no visible object, no temporary file)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from tests.conftest import FIXTURES, register
from tests.s3 import (
    CuttableProxy,
    MotoS3,
    leftovers,
    make_s3_settings,
    object_keys,
    pending_multipart,
    start_moto,
)
from tests.uploads.test_direct_upload import (
    create,
    is_staging_of,
    put,
    upload_parts,
    wav_bytes,
)
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.db import make_engine, make_sessionmaker
from verbatim.embedded_db import to_sqlalchemy_url
from verbatim.housekeeping.service import check_storage, cleanup
from verbatim.models import AudioFile
from verbatim.services import get_services
from verbatim.storage import StorageUnavailable
from verbatim.storage.s3 import S3Storage

MIB = 1024 * 1024


@pytest.fixture
async def own_moto() -> AsyncIterator[MotoS3]:
    """A server of this test's own, which it may stop (moto keeps its data in the process, so
    a server started again on the same port has the same buckets)."""
    moto = start_moto()
    yield moto
    moto.server.stop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, own_moto: MotoS3) -> Settings:
    return make_s3_settings(
        tmp_path,
        database_url,
        own_moto.endpoint_url,
        own_moto.new_bucket(),
        multipart_threshold_bytes=5 * MIB,
        multipart_part_size_bytes=5 * MIB,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, with_worker=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://verbatim.test", timeout=60
        ) as http:
            yield http


def restart(moto: MotoS3) -> None:
    moto.server.stop()
    again = start_moto(moto.port)
    moto.server = again.server


async def audio_rows() -> int:
    async with get_services().sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(AudioFile)) or 0)


async def test_upload_through_the_api_while_s3_is_down(
    client: httpx.AsyncClient, settings: Settings, own_moto: MotoS3
) -> None:
    user = await register(client)
    own_moto.server.stop()
    started = time.monotonic()
    r = await user.upload(FIXTURES / "speech.wav")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "storage_unavailable"
    assert r.headers["retry-after"] == "5"
    assert "Traceback" not in r.text and "botocore" not in r.text
    assert time.monotonic() - started < 15  # retried with backoff, then gave up
    assert await audio_rows() == 0
    assert leftovers(settings) == []
    restart(own_moto)
    assert object_keys(settings) == [] and pending_multipart(settings) == []
    # Back up: the same upload goes through.
    assert (await user.upload(FIXTURES / "speech.wav")).status_code == 201


@pytest.mark.slow
async def test_direct_multipart_upload_survives_an_outage(
    client: httpx.AsyncClient, settings: Settings, own_moto: MotoS3
) -> None:
    user = await register(client)
    data = wav_bytes(11 * MIB)
    upload = await create(user, "long.wav", len(data))
    first, second, third = upload["multipart"]["parts"]
    assert (await put(user, first["url"], data[: 5 * MIB])).status_code == 200
    assert (await put(user, second["url"], data[5 * MIB : 10 * MIB])).status_code == 200

    own_moto.server.stop()  # mid-upload: the third part never arrives
    with pytest.raises(httpx.ConnectError):
        await put(user, third["url"], data[10 * MIB :])
    r = await user.post(upload["complete_url"])
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "storage_unavailable"
    assert await audio_rows() == 0 and leftovers(settings) == []
    # The client gives up; the parts cannot be removed right now, the abort is recorded.
    assert (await user.delete(f"/api/v1/uploads/{upload['id']}")).status_code == 204

    restart(own_moto)
    assert object_keys(settings) == []  # nothing became visible
    (held,) = pending_multipart(settings)  # the parts are still held
    assert is_staging_of(held, upload["id"])
    services = get_services()
    later = datetime.now(UTC) + timedelta(hours=2)
    report = await cleanup(services.sessionmaker, services.storage, settings, later)
    assert report.aborted_multipart == 1
    assert pending_multipart(settings) == [] and object_keys(settings) == []


@pytest.mark.slow
async def test_complete_while_s3_is_down_then_again_when_back(
    client: httpx.AsyncClient, settings: Settings, own_moto: MotoS3
) -> None:
    user = await register(client)
    data = wav_bytes(11 * MIB)
    upload = await create(user, "long.wav", len(data))
    await upload_parts(user, upload, data)
    own_moto.server.stop()
    r = await user.post(upload["complete_url"])
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert await audio_rows() == 0 and leftovers(settings) == []
    restart(own_moto)
    assert object_keys(settings) == []
    state = (await user.get(f"/api/v1/uploads/{upload['id']}")).json()
    assert state["status"] == "pending"  # the client may simply try again
    r = await user.post(upload["complete_url"])
    assert r.status_code == 201, r.text
    assert [k.split("/")[0] for k in object_keys(settings)] == ["uploads"]
    assert pending_multipart(settings) == [] and leftovers(settings) == []


@pytest.mark.slow
async def test_batch_delete_while_s3_is_down_leaves_orphans_never_missing_media(
    client: httpx.AsyncClient, settings: Settings, own_moto: MotoS3
) -> None:
    user = await register(client)
    ids = [
        (await user.upload(FIXTURES / name)).json()["id"] for name in ("speech.wav", "speech.mp3")
    ]
    keys = object_keys(settings)
    own_moto.server.stop()
    r = await user.post("/api/v1/audio/batch-delete", json={"ids": ids})
    # The rows are deleted (committed first); the objects could not be, and stay behind.
    assert r.status_code == 200 and r.json() == {"deleted": ids, "failed": []}
    restart(own_moto)
    assert object_keys(settings) == keys
    services = get_services()
    later = datetime.now(UTC) + timedelta(hours=2)
    report = await check_storage(services.sessionmaker, services.storage, now=later)
    assert sorted(o.key for o in report.orphan_objects) == keys
    assert report.missing_media == []
    await check_storage(services.sessionmaker, services.storage, fix=True, now=later)
    assert object_keys(settings) == []


async def test_connection_cut_in_the_middle_of_a_multipart_put(
    tmp_path: Path, database_url: str, own_moto: MotoS3
) -> None:
    bucket = own_moto.new_bucket()
    settings = make_s3_settings(tmp_path, database_url, own_moto.endpoint_url, bucket)
    proxy = CuttableProxy(own_moto.port, cut_after=7 * MIB)  # inside the second 5 MiB part
    flaky = S3Storage(
        bucket=bucket,
        tmp_dir=settings.tmp_dir,
        endpoint_url=proxy.endpoint_url,
        access_key_id="test",
        secret_access_key="test",
        addressing_style="path",
        max_attempts=2,
    )
    flaky.single_put_max = flaky.part_size = 5 * MIB
    source = tmp_path / "big.wav"
    source.write_bytes(wav_bytes(16 * MIB))
    key = "uploads/user_x/2026/11/abc_big.wav"
    with pytest.raises(StorageUnavailable):
        flaky.put_file(source, key)
    assert proxy.sent > 7 * MIB
    assert source.exists()  # the caller's file is left to the caller
    assert object_keys(settings) == []  # no object, not even a partial one
    # Its parts could not be aborted (storage was gone): invisible, but they hold bytes.
    assert pending_multipart(settings) == [key]

    # Housekeeping aborts such leftovers once they are older than the grace period.
    engine = make_engine(to_sqlalchemy_url(database_url), 2)
    try:
        healthy = S3Storage(
            bucket=bucket,
            tmp_dir=settings.tmp_dir,
            endpoint_url=own_moto.endpoint_url,
            access_key_id="test",
            secret_access_key="test",
            addressing_style="path",
        )
        later = datetime.now(UTC) + timedelta(hours=2)
        report = await cleanup(make_sessionmaker(engine), healthy, settings, later)
    finally:
        await engine.dispose()
    assert report.aborted_multipart == 1
    assert pending_multipart(settings) == [] and object_keys(settings) == []
