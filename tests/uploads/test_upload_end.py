"""A direct upload ends cleanly: its staging object goes only after the completion committed,
and its signed URLs take no more bytes once it is completed or aborted."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import backend_settings, object_keys, pending_multipart
from tests.uploads.test_direct_upload import MIB, create, put, wav_bytes
from verbatim.config import Settings
from verbatim.models import User
from verbatim.services import get_services
from verbatim.uploads.service import complete_upload


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
    )


async def _complete_then_roll_back(alice: ApiUser, upload_id: str) -> None:
    """POST /complete whose transaction fails to commit: every step runs, then a rollback."""
    services = get_services()
    async with services.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == alice.email))
        assert user is not None
        await complete_upload(
            session, services.storage, services.settings, user, uuid.UUID(upload_id)
        )
        await session.rollback()


async def test_a_failed_commit_does_not_strand_a_single_put_upload(
    alice: ApiUser, settings: Settings
) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    assert (await put(alice, upload["url"], data)).status_code == 200

    await _complete_then_roll_back(alice, upload["id"])
    state = (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()
    assert state["status"] == "pending"

    r = await alice.post(upload["complete_url"])
    assert r.status_code == 201, r.text
    staging = [k for k in object_keys(settings) if k.startswith("staging/")]
    assert staging == []  # deleted once the second completion committed


async def test_a_failed_commit_does_not_strand_a_multipart_upload(
    alice: ApiUser, settings: Settings
) -> None:
    data = wav_bytes(11 * MIB)
    upload = await create(alice, "long.wav", len(data))
    for part in upload["multipart"]["parts"]:
        start = (part["part_number"] - 1) * upload["multipart"]["part_size"]
        assert (
            await put(alice, part["url"], data[start : start + part["size"]])
        ).status_code == 200

    await _complete_then_roll_back(alice, upload["id"])
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 201, r.text
    assert r.json()["size_bytes"] == len(data)
    assert [k for k in object_keys(settings) if k.startswith("staging/")] == []


async def test_put_after_completion_is_refused(alice: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    assert (await put(alice, upload["url"], data)).status_code == 200
    assert (await alice.post(upload["complete_url"])).status_code == 201
    keys_after_completion = object_keys(settings)

    r = await put(alice, upload["url"], b"late bytes")
    if settings.storage == "local":
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "upload_completed"
        assert object_keys(settings) == keys_after_completion
    else:
        # S3 cannot revoke a presigned single PUT: the late object is a staging object of a
        # finished upload, which housekeeping removes (docs/decisions/0007).
        assert r.status_code == 200


async def test_put_after_abort_is_refused(alice: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    assert (await alice.delete(f"/api/v1/uploads/{upload['id']}")).status_code == 204
    r = await put(alice, upload["url"], data)
    if settings.storage == "local":
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
    # Local: the session says aborted. S3: the multipart upload was aborted, so S3 refuses
    # the part (AWS: 404 NoSuchUpload; moto answers 500).
    assert r.status_code >= 400, r.text
    if settings.storage == "local":
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
    assert r.status_code >= 400, r.text
    if settings.storage == "local":
        assert r.status_code == 409 and r.json()["error"]["code"] == "upload_completed"
    assert object_keys(settings) == keys and pending_multipart(settings) == []
