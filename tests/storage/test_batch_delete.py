"""Deleting many audio files in one request, on both backends."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import backend_settings, object_keys
from verbatim.config import Settings


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    moto = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    return backend_settings(request.param, tmp_path, database_url, moto)


async def test_batch_delete_reports_each_failure(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    ids = [
        (await alice.upload(FIXTURES / name)).json()["id"]
        for name in ("speech.wav", "speech.mp3", "speech.flac")
    ]
    bobs = (await bob.upload(FIXTURES / "speech2.wav")).json()["id"]
    assert len(object_keys(settings)) == 4
    unknown = str(uuid.uuid4())
    r = await alice.post(
        "/api/v1/audio/batch-delete",
        json={"ids": [ids[0], ids[1], bobs, "nope", unknown, ids[0]]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["deleted"] == ids[:2]
    assert body["failed"] == [
        {"id": bobs, "code": "audio_not_found", "message": "Audio file not found"},
        {"id": "nope", "code": "invalid_id", "message": "Not a UUID"},
        {"id": unknown, "code": "audio_not_found", "message": "Audio file not found"},
    ]
    listed = {a["id"] for a in (await alice.get("/api/v1/audio")).json()["items"]}
    assert listed == {ids[2]}
    assert (await bob.get(f"/api/v1/audio/{bobs}")).status_code == 200
    assert len(object_keys(settings)) == 2  # alice's third file and bob's


async def test_batch_delete_validates_its_input(alice: ApiUser, settings: Settings) -> None:
    for body in ({"ids": []}, {"ids": ["x"] * 501}, {}, {"ids": "abc"}):
        r = await alice.post("/api/v1/audio/batch-delete", json=body)
        assert r.status_code == 422, body
    r = await alice.client.post("/api/v1/audio/batch-delete", json={"ids": [str(uuid.uuid4())]})
    assert r.status_code == 401
