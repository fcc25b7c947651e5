"""Direct uploads through presigned URLs, on the local backend (URLs signed by the API) and on
S3 (moto over HTTP): the same client code for both."""

from __future__ import annotations

import hashlib
import os
import re
import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select, update

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import backend_settings, leftovers, object_keys, pending_multipart, read_object
from verbatim.config import Settings
from verbatim.models import AudioFile, UploadSession
from verbatim.services import get_services

MIB = 1024 * 1024


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


def wav_bytes(size: int, seed: int = 1) -> bytes:
    """A valid 16 kHz mono PCM WAV of exactly `size` bytes (quiet noise)."""
    data = (size - 44) // 2 * 2
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16, b"data", data,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    return header + rng.integers(-200, 200, data // 2, dtype=np.int16).tobytes()


async def put(user: ApiUser, url: str, data: bytes) -> httpx.Response:
    """PUT to a presigned URL as a client would: no credentials besides the URL itself."""
    if url.startswith(str(user.client.base_url)):  # local backend: a URL of this API
        return await user.client.put(url, content=data)
    async with httpx.AsyncClient(timeout=60) as real:
        return await real.put(url, content=data)


async def create(user: ApiUser, name: str, size: int, **extra: Any) -> dict[str, Any]:
    r = await user.post(
        "/api/v1/uploads", json={"filename": name, "size": size, "content_type": "audio/wav"}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def upload_parts(user: ApiUser, upload: dict[str, Any], data: bytes) -> None:
    for part in upload["multipart"]["parts"]:
        start = (part["part_number"] - 1) * upload["multipart"]["part_size"]
        chunk = data[start : start + part["size"]]
        r = await put(user, part["url"], chunk)
        assert r.status_code == 200, r.text
        assert r.headers["etag"]


def is_staging_of(key: str, upload_id: str) -> bool:
    """Staging keys are `staging/{created}_{upload id}`."""
    return re.fullmatch(rf"staging/\d{{8}}T\d{{6}}Z_{upload_id}", key) is not None


async def audio_rows() -> int:
    async with get_services().sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(AudioFile)) or 0)


async def assert_nothing_stored(settings: Settings) -> None:
    assert object_keys(settings) == []
    assert pending_multipart(settings) == []
    assert leftovers(settings) == []
    assert await audio_rows() == 0


async def test_single_put_then_complete(alice: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "my talk.wav", len(data))
    assert upload["status"] == "pending" and upload["multipart"] is None
    assert upload["url"].startswith("http")
    assert object_keys(settings) == []

    r = await put(alice, upload["url"], data)
    assert r.status_code == 200, r.text
    (staged,) = object_keys(settings)
    assert is_staging_of(staged, upload["id"])

    r = await alice.post(upload["complete_url"])
    assert r.status_code == 201, r.text
    audio = r.json()
    assert audio["is_duplicate"] is False
    assert audio["source_type"] == "presigned"
    assert audio["sha256"] == hashlib.sha256(data).hexdigest()
    assert audio["size_bytes"] == len(data)
    assert audio["mime_type"] == "audio/wav" and audio["codec"] == "pcm_s16le"
    assert audio["original_filename"] == "my talk.wav"
    me = (await alice.get("/api/v1/auth/me")).json()
    (key,) = object_keys(settings)  # staging is gone, the media is in the user's folder
    assert key.startswith(f"uploads/user_{me['id']}/")
    assert re.search(r"/[0-9a-f]{32}_my_talk\.wav$", key)
    assert read_object(settings, key) == data
    assert leftovers(settings) == []

    state = (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()
    assert state["status"] == "completed" and state["audio_file_id"] == audio["id"]
    assert state["url"] is None and state["completed_at"]
    # Completing again (a retried request) gives the same file back.
    again = await alice.post(upload["complete_url"])
    assert again.status_code == 200 and again.json()["id"] == audio["id"]
    assert again.json()["is_duplicate"] is True


async def test_multipart_then_complete(alice: ApiUser, settings: Settings) -> None:
    data = wav_bytes(12 * MIB + 12345)
    upload = await create(alice, "long.wav", len(data))
    assert upload["url"] is None
    multipart = upload["multipart"]
    assert multipart["part_size"] == 5 * MIB and multipart["part_count"] == 3
    assert [p["size"] for p in multipart["parts"]] == [5 * MIB, 5 * MIB, len(data) - 10 * MIB]

    await upload_parts(alice, upload, data)
    assert object_keys(settings) == []  # parts are not an object until completed
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 201, r.text
    audio = r.json()
    assert audio["sha256"] == hashlib.sha256(data).hexdigest()
    assert audio["size_bytes"] == len(data)
    (key,) = object_keys(settings)
    assert key.startswith("uploads/") and read_object(settings, key) == data
    assert pending_multipart(settings) == []
    assert leftovers(settings) == []
    content = await alice.get(f"/api/v1/audio/{audio['id']}")
    assert content.json()["duration"] == pytest.approx((len(data) - 44) / 32000, abs=0.01)


async def test_complete_before_upload_is_incomplete_and_can_finish_later(
    alice: ApiUser, settings: Settings
) -> None:
    data = (FIXTURES / "speech.mp3").read_bytes()
    upload = await create(alice, "a.mp3", len(data))
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_incomplete"
    assert (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()["status"] == "pending"
    assert (await put(alice, upload["url"], data)).status_code == 200
    assert (await alice.post(upload["complete_url"])).status_code == 201


async def test_multipart_with_a_missing_part_is_incomplete(
    alice: ApiUser, settings: Settings
) -> None:
    data = wav_bytes(11 * MIB)
    upload = await create(alice, "long.wav", len(data))
    first, _, third = upload["multipart"]["parts"]
    assert (await put(alice, first["url"], data[: 5 * MIB])).status_code == 200
    assert (await put(alice, third["url"], data[10 * MIB :])).status_code == 200
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "upload_incomplete"
    assert r.json()["error"]["details"] == {"missing_parts": [2]}
    # The client fetches fresh URLs and sends the missing part.
    fresh = (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()
    second = fresh["multipart"]["parts"][1]
    assert (await put(alice, second["url"], data[5 * MIB : 10 * MIB])).status_code == 200
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("declared_delta", [+1000, -1000])
async def test_wrong_size_is_rejected_and_leaves_nothing(
    alice: ApiUser, settings: Settings, declared_delta: int
) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data) + declared_delta)
    r = await put(alice, upload["url"], data)
    if declared_delta < 0 and settings.storage == "local":
        # The local backend enforces the signed size while receiving; S3 cannot.
        assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
        r = await alice.post(upload["complete_url"])
        assert r.status_code == 409 and r.json()["error"]["code"] == "upload_incomplete"
        await assert_nothing_stored(settings)
        return
    assert r.status_code == 200
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "upload_size_mismatch"
    assert error["details"] == {
        "declared_size": len(data) + declared_delta,
        "uploaded_size": len(data),
    }
    await assert_nothing_stored(settings)
    state = (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()
    assert state["status"] == "aborted" and state["error_code"] == "upload_size_mismatch"
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_aborted"


async def test_multipart_with_wrong_total_is_rejected(alice: ApiUser, settings: Settings) -> None:
    data = wav_bytes(11 * MIB)
    upload = await create(alice, "long.wav", len(data) + 7)
    await upload_parts(alice, upload, data)  # the last part is 7 bytes short
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "upload_size_mismatch"
    await assert_nothing_stored(settings)


@pytest.mark.parametrize("name", ["random.bin", "not_audio.mp3", "image.wav", "truncated.mp3"])
async def test_non_media_is_415_and_leaves_nothing(
    alice: ApiUser, settings: Settings, name: str
) -> None:
    data = (FIXTURES / name).read_bytes()
    upload = await create(alice, name, len(data))
    assert (await put(alice, upload["url"], data)).status_code == 200
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media"
    assert "Traceback" not in r.text
    await assert_nothing_stored(settings)
    state = (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()
    assert state["status"] == "aborted" and state["error_code"] == "unsupported_media"


async def test_same_bytes_as_a_library_file_is_a_duplicate(
    alice: ApiUser, settings: Settings
) -> None:
    first = await alice.upload(FIXTURES / "speech.flac")
    assert first.status_code == 201
    data = (FIXTURES / "speech.flac").read_bytes()
    upload = await create(alice, "again.flac", len(data))
    await put(alice, upload["url"], data)
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 200, r.text
    assert r.json()["is_duplicate"] is True and r.json()["id"] == first.json()["id"]
    assert len(object_keys(settings)) == 1  # the staged copy is gone
    assert await audio_rows() == 1
    assert leftovers(settings) == []


async def test_another_user_gets_404(alice: ApiUser, bob: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    await put(alice, upload["url"], data)
    base = f"/api/v1/uploads/{upload['id']}"
    for r in (
        await bob.get(base),
        await bob.post(f"{base}/complete"),
        await bob.delete(base),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "upload_not_found"
    assert (await alice.client.get(base)).status_code == 401
    # Alice's upload is untouched by all that.
    assert (await alice.post(f"{base}/complete")).status_code == 201


async def test_abort_removes_what_was_uploaded(alice: ApiUser, settings: Settings) -> None:
    data = wav_bytes(11 * MIB)
    upload = await create(alice, "long.wav", len(data))
    first = upload["multipart"]["parts"][0]
    assert (await put(alice, first["url"], data[: 5 * MIB])).status_code == 200
    (staged,) = pending_multipart(settings)
    assert is_staging_of(staged, upload["id"])
    r = await alice.delete(f"/api/v1/uploads/{upload['id']}")
    assert r.status_code == 204
    await assert_nothing_stored(settings)
    state = (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()
    assert state["status"] == "aborted" and state["multipart"] is None
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_aborted"
    assert (await alice.delete(f"/api/v1/uploads/{upload['id']}")).status_code == 204


async def test_expired_upload_is_gone(alice: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    await put(alice, upload["url"], data)
    async with get_services().sessionmaker() as session:
        await session.execute(
            update(UploadSession).values(expires_at=func.now() - func.make_interval(0, 0, 0, 0, 1))
        )
        await session.commit()
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 410 and r.json()["error"]["code"] == "upload_expired"
    await assert_nothing_stored(settings)
    state = (await alice.get(f"/api/v1/uploads/{upload['id']}")).json()
    assert state["status"] == "expired" and state["url"] is None


async def test_bad_requests_are_refused_and_store_nothing(
    alice: ApiUser, settings: Settings
) -> None:
    for body in (
        {"filename": "a.wav", "size": 0},
        {"filename": "a.wav", "size": -5},
        {"filename": "", "size": 10},
        {"filename": "x" * 256, "size": 10},
        {"size": 10},
        {"filename": "a.wav", "size": "big"},
    ):
        r = await alice.post("/api/v1/uploads", json=body)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "validation_error"
    r = await alice.post(
        "/api/v1/uploads", json={"filename": "a.wav", "size": settings.direct_upload_max_bytes + 1}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    r = await alice.client.post("/api/v1/uploads", json={"filename": "a.wav", "size": 10})
    assert r.status_code == 401
    assert (await alice.get(f"/api/v1/uploads/{os.urandom(16).hex()}")).status_code == 404
    assert (await alice.get("/api/v1/uploads/not-a-uuid")).status_code == 422
    async with get_services().sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(UploadSession)) == 0
    await assert_nothing_stored(settings)
