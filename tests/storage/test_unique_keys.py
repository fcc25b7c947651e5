"""Storage keys are never reused: deleting a file and uploading the same bytes again before the
deferred object delete ran must not let that delete remove the new row's media."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import backend_settings, fetch
from verbatim.audio.batch import delete_objects
from verbatim.audio.service import delete_audio
from verbatim.config import Settings
from verbatim.models import AudioFile, User
from verbatim.services import get_services


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    moto = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    return backend_settings(request.param, tmp_path, database_url, moto)


async def test_reupload_between_delete_commit_and_object_delete_keeps_the_new_media(
    alice: ApiUser, settings: Settings
) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    first = (await alice.upload(FIXTURES / "speech.wav")).json()
    services = get_services()

    # DELETE /audio/{id}, step by step: the row goes and the transaction commits...
    async with services.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == alice.email))
        assert user is not None
        old_key = await delete_audio(session, user, uuid.UUID(first["id"]))
        await session.commit()

    # ... the same bytes come back before the object delete ran ...
    r = await alice.upload(FIXTURES / "speech.wav")
    assert r.status_code == 201, r.text
    second = r.json()
    async with services.sessionmaker() as session:
        row = await session.get(AudioFile, uuid.UUID(second["id"]))
        assert row is not None
        assert row.storage_key != old_key

    # ... and then the delayed delete of the first row's object runs.
    await delete_objects(services.storage, [old_key])

    r = await fetch(alice, f"/api/v1/audio/{second['id']}/content")
    assert r.status_code == 200, r.text
    assert r.content == data
