"""The local backend's signed PUT URLs take no bytes once their upload was completed, aborted
or expired, although the URL itself is still valid (a 409/410 with a code; nothing written).

With S3 a part URL of an aborted or completed multipart upload is refused by S3 itself
(NoSuchUpload); a single-PUT URL cannot be revoked, and a late object is a staging object of a
finished upload that `storage.cleanup` removes (docs/decisions/0007-media-hardening.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, update

from tests.conftest import FIXTURES, ApiUser, make_settings
from tests.s3 import object_keys, pending_multipart
from tests.uploads.test_direct_upload import MIB, create, put, wav_bytes
from verbatim.config import Settings
from verbatim.models import UploadSession
from verbatim.services import get_services


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        multipart_threshold_bytes=5 * MIB,
        multipart_part_size_bytes=5 * MIB,
    )


async def test_put_after_completion_is_refused(alice: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    assert (await put(alice, upload["url"], data)).status_code == 200
    assert (await alice.post(upload["complete_url"])).status_code == 201
    keys_after_completion = object_keys(settings)

    r = await put(alice, upload["url"], b"late bytes")
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "upload_completed"
    assert object_keys(settings) == keys_after_completion


async def test_put_after_abort_is_refused(alice: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    assert (await alice.delete(f"/api/v1/uploads/{upload['id']}")).status_code == 204
    r = await put(alice, upload["url"], data)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "upload_aborted"
    assert object_keys(settings) == []


async def test_part_put_after_abort_or_completion_is_refused(
    alice: ApiUser, settings: Settings
) -> None:
    data = wav_bytes(11 * MIB)
    aborted = await create(alice, "long.wav", len(data))
    assert (await alice.delete(f"/api/v1/uploads/{aborted['id']}")).status_code == 204
    part = aborted["multipart"]["parts"][0]
    r = await put(alice, part["url"], data[: 5 * MIB])
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_aborted"
    assert pending_multipart(settings) == [] and object_keys(settings) == []

    done = await create(alice, "long2.wav", len(data))
    for p in done["multipart"]["parts"]:
        start = (p["part_number"] - 1) * done["multipart"]["part_size"]
        assert (await put(alice, p["url"], data[start : start + p["size"]])).status_code == 200
    assert (await alice.post(done["complete_url"])).status_code == 201
    keys = object_keys(settings)
    first = done["multipart"]["parts"][0]
    r = await put(alice, first["url"], data[: 5 * MIB])
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_completed"
    assert object_keys(settings) == keys and pending_multipart(settings) == []


async def test_put_after_expiry_is_410(alice: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    async with get_services().sessionmaker() as session:
        await session.execute(
            update(UploadSession).values(expires_at=func.now() - func.make_interval(0, 0, 0, 0, 1))
        )
        await session.commit()
    r = await put(alice, upload["url"], data)  # the URL itself is signed for longer
    assert r.status_code == 410, r.text
    assert r.json()["error"]["code"] == "upload_expired"
    assert object_keys(settings) == []
