"""Storage housekeeping on both backends: the consistency check (service and CLI), cleanup of
temporary files and abandoned uploads, media retention."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import (
    backend_settings,
    delete_object,
    object_keys,
    pending_multipart,
    put_object,
)
from tests.storage.test_delivery import completed_transcription
from tests.test_cli import run_cli
from tests.uploads.test_direct_upload import create, is_staging_of, put, wav_bytes
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.housekeeping import tasks
from verbatim.housekeeping.service import apply_retention, check_storage, cleanup
from verbatim.models import AudioFile, UploadSession, UploadStatus
from verbatim.queue import queue
from verbatim.services import get_services

MIB = 1024 * 1024
LATER = timedelta(hours=2)  # past the grace period for young objects


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    moto = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    return backend_settings(
        request.param,
        tmp_path,
        database_url,
        moto,
        multipart_threshold_bytes=5 * MIB,
        multipart_part_size_bytes=5 * MIB,
        media_retention_days=30,
    )


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """No worker here: its periodic cleanup would race the calls under test."""
    app = create_app(settings, with_worker=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://verbatim.test", timeout=60
        ) as client:
            yield client


async def upload(user: ApiUser, name: str) -> dict[str, Any]:
    r = await user.upload(FIXTURES / name)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def key_of(audio_id: str) -> str:
    async with get_services().sessionmaker() as session:
        key = await session.scalar(
            select(AudioFile.storage_key).where(AudioFile.id == uuid.UUID(audio_id))
        )
    assert key is not None
    return key


async def test_check_finds_planted_orphans_and_missing_media(
    alice: ApiUser, settings: Settings
) -> None:
    kept = await upload(alice, "speech.wav")
    lost = await upload(alice, "speech.mp3")
    transcription_id = await completed_transcription(alice, lost["id"])
    orphan = "uploads/user_ghost/2026/01/0123456789abcdef_orphan.wav"
    put_object(settings, orphan, b"nobody's media")
    delete_object(settings, await key_of(lost["id"]))
    services = get_services()

    report = await check_storage(services.sessionmaker, services.storage)
    # Just planted: young enough to be an upload whose row is not committed yet.
    assert [o.key for o in report.recent_orphans] == [orphan]
    assert report.orphan_objects == []
    later = datetime.now(UTC) + LATER
    report = await check_storage(services.sessionmaker, services.storage, now=later)
    assert [o.key for o in report.orphan_objects] == [orphan]
    assert [(str(m.audio_file_id), m.has_transcriptions) for m in report.missing_media] == [
        (lost["id"], True)
    ]
    assert report.rows_checked == 2 and report.objects_checked == 2
    assert not report.consistent

    report = await check_storage(services.sessionmaker, services.storage, fix=True, now=later)
    assert report.deleted_objects == 1 and report.marked_rows == 1
    assert object_keys(settings) == [await key_of(kept["id"])]
    # The row stays, with its transcript; its media is reported gone.
    r = await alice.get(f"/api/v1/audio/{lost['id']}/content")
    assert r.status_code == 410 and r.json()["error"]["code"] == "media_expired"
    assert (await alice.get(f"/api/v1/transcriptions/{transcription_id}")).status_code == 200
    assert (await alice.get(f"/api/v1/audio/{lost['id']}")).json()["media_deleted_at"]
    report = await check_storage(services.sessionmaker, services.storage, now=later)
    assert report.consistent and report.recent_orphans == []


@pytest.mark.slow
async def test_cli_check_and_fix(alice: ApiUser, settings: Settings) -> None:
    audio = await upload(alice, "speech.wav")
    orphan = "uploads/user_ghost/2026/01/0123456789abcdef_orphan.wav"
    put_object(settings, orphan, b"nobody's media")
    env = {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": str(settings.database_url),
        "VERBATIM_SECRET_KEY": str(settings.secret_key),
        "VERBATIM_LOG_JSON": "false",
        "VERBATIM_LOG_LEVEL": "WARNING",
        "VERBATIM_STORAGE": settings.storage,
    }
    if settings.storage == "s3":
        env |= {
            "VERBATIM_S3_ENDPOINT_URL": str(settings.s3_endpoint_url),
            "VERBATIM_S3_BUCKET": str(settings.s3_bucket),
            "VERBATIM_S3_ACCESS_KEY_ID": "test",
            "VERBATIM_S3_SECRET_ACCESS_KEY": "test",
            "VERBATIM_S3_ADDRESSING_STYLE": "path",
        }
    r = run_cli("storage", "check", env=env)
    assert r.returncode == 0, r.stderr  # a fresh orphan may be an upload in progress
    assert f"object without row (recent, may be an upload in progress): {orphan}" in r.stdout
    r = run_cli("storage", "check", "--grace-minutes", "0", "--json", env=env)
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    assert summary["orphan_objects"] == [orphan]
    assert summary["rows_without_objects"] == []
    assert summary["rows_checked"] == 1 and summary["objects_checked"] == 2
    r = run_cli("storage", "check", "--grace-minutes", "0", "--fix", env=env)
    assert r.returncode == 0, r.stderr
    assert "deleted 1 objects, marked 0 rows" in r.stdout
    r = run_cli("storage", "check", "--grace-minutes", "0", env=env)
    assert r.returncode == 0 and "storage and database agree" in r.stdout
    assert object_keys(settings) == [await key_of(audio["id"])]


def _age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


async def test_cleanup_removes_what_was_abandoned(alice: ApiUser, settings: Settings) -> None:
    services = get_services()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    old_tmp, new_tmp = settings.tmp_dir / "upload-old.part", settings.tmp_dir / "upload-new.part"
    old_tmp.write_bytes(b"x")
    new_tmp.write_bytes(b"x")
    _age(old_tmp, settings.tmp_max_age_hours + 1)
    if settings.storage == "local":
        partial = settings.media_dir / ".incoming" / "abandoned.part"
        partial.write_bytes(b"x")
        _age(partial, settings.tmp_max_age_hours + 1)

    data = wav_bytes(11 * MIB)
    expired_multi = await create(alice, "a.wav", len(data))
    part = expired_multi["multipart"]["parts"][0]
    assert (await put(alice, part["url"], data[: 5 * MIB])).status_code == 200
    small = (FIXTURES / "speech.wav").read_bytes()
    expired_single = await create(alice, "b.wav", len(small))
    assert (await put(alice, expired_single["url"], small)).status_code == 200
    live = await create(alice, "c.wav", len(small))
    assert (await put(alice, live["url"], small)).status_code == 200
    async with services.sessionmaker() as session:
        await session.execute(
            update(UploadSession)
            .where(UploadSession.id.in_([expired_multi["id"], expired_single["id"]]))
            .values(expires_at=func.now() - timedelta(minutes=1))
        )
        await session.commit()
    stray = f"staging/{uuid.uuid4()}"  # not a key the service makes: judged by its timestamp
    put_object(settings, stray, b"a PUT that came after its upload was aborted")
    old_key = f"staging/20200101T000000Z_{uuid.uuid4()}"  # its key says it is old
    put_object(settings, old_key, b"from an upload whose row was never committed")
    export = f"exports/user_x/{uuid.uuid4()}/abc_t.srt"
    put_object(settings, export, b"1\n")

    report = await cleanup(services.sessionmaker, services.storage, settings)
    assert report.tmp_files == 1 and not old_tmp.exists() and new_tmp.exists()
    assert report.partial_writes == (1 if settings.storage == "local" else 0)
    assert report.expired_uploads == 2
    assert report.staging_objects == 1  # old_key
    assert pending_multipart(settings) == []
    assert stray in object_keys(settings)  # young: kept for now
    assert old_key not in object_keys(settings)
    report = await cleanup(
        services.sessionmaker, services.storage, settings, datetime.now(UTC) + LATER
    )
    assert report.staging_objects == 1 and report.exports == 1  # the stray one, now old
    (kept,) = object_keys(settings)  # the live upload is untouched
    assert is_staging_of(kept, live["id"])
    async with services.sessionmaker() as session:
        states = dict((await session.execute(select(UploadSession.id, UploadSession.status))).all())
    assert states[uuid.UUID(expired_multi["id"])] is UploadStatus.expired
    assert states[uuid.UUID(expired_single["id"])] is UploadStatus.expired
    assert states[uuid.UUID(live["id"])] is UploadStatus.pending
    assert (await alice.post(live["complete_url"])).status_code == 201


async def test_retention_deletes_old_media_and_keeps_transcripts(
    alice: ApiUser, settings: Settings
) -> None:
    old = await upload(alice, "speech.wav")
    new = await upload(alice, "speech.mp3")
    transcription_id = await completed_transcription(alice, old["id"])
    services = get_services()
    old_key = await key_of(old["id"])
    async with services.sessionmaker() as session:
        await session.execute(
            update(AudioFile)
            .where(AudioFile.id == uuid.UUID(old["id"]))
            .values(created_at=func.now() - timedelta(days=40))
        )
        await session.commit()

    assert await apply_retention(services.sessionmaker, services.storage, None) == 0
    assert await tasks.retention(0) == 1  # the periodic task, with the configured 30 days
    assert await tasks.retention(0) == 0
    assert old_key not in object_keys(settings)
    assert object_keys(settings) == [await key_of(new["id"])]

    r = await alice.get(f"/api/v1/audio/{old['id']}/content")
    assert r.status_code == 410 and r.json()["error"]["code"] == "media_expired"
    assert (await alice.get(f"/api/v1/audio/{old['id']}")).json()["media_deleted_at"]
    r = await alice.get(
        f"/api/v1/transcriptions/{transcription_id}/export", params={"format": "txt"}
    )
    assert r.status_code == 200 and "General Kenobi" in r.text
    r = await alice.post(f"/api/v1/audio/{old['id']}/transcriptions", json={})
    assert r.status_code == 410 and r.json()["error"]["code"] == "media_expired"
    assert (await alice.get(f"/api/v1/audio/{new['id']}/content")).status_code in (200, 307)

    # The same bytes uploaded again bring the media back to the same record.
    again = await alice.upload(FIXTURES / "speech.wav")
    assert again.status_code == 200 and again.json()["id"] == old["id"]
    assert again.json()["media_deleted_at"] is None
    assert old_key in object_keys(settings)
    assert (await alice.get(f"/api/v1/audio/{old['id']}/content")).status_code in (200, 307)


async def test_housekeeping_tasks_are_periodic_on_the_default_queue() -> None:
    periodic = queue.periodic_registry.periodic_tasks
    assert ("storage.cleanup", "storage_cleanup") in periodic
    assert ("storage.retention", "storage_retention") in periodic
    for name in ("storage.cleanup", "storage.retention"):
        assert queue.tasks[name].queue == "default"
