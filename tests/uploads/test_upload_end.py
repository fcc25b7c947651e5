"""A direct upload ends cleanly: its staging object goes only after the completion committed,
and its signed URLs take no more bytes once it is completed or aborted."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import backend_settings, object_keys
from tests.uploads.test_direct_upload import MIB, create, put, wav_bytes
from verbatim.config import Settings
from verbatim.models import UploadSession, UploadStatus, User
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


class CommitFails(AsyncSession):
    """A session whose commit fails when it would mark an upload completed (as when the
    database goes away at that moment): it rolls back instead."""

    async def commit(self) -> None:
        if any(
            isinstance(row, UploadSession) and row.status is UploadStatus.completed
            for row in self.identity_map.values()
        ):
            await self.rollback()
            raise RuntimeError("the commit failed")
        await super().commit()


async def _complete_then_roll_back(alice: ApiUser, upload_id: str) -> None:
    """POST /complete whose final transaction fails to commit: every step runs, then a
    rollback."""
    services = get_services()
    async with services.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == alice.email))
        assert user is not None
    failing = async_sessionmaker(services.engine, class_=CommitFails, expire_on_commit=False)
    with pytest.raises(RuntimeError, match="the commit failed"):
        await complete_upload(
            failing, services.storage, services.settings, user, uuid.UUID(upload_id)
        )


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
