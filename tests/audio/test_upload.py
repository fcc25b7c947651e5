from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import FIXTURES, ApiUser, make_settings, register
from tests.s3 import backend_settings, mirror_media
from verbatim.config import Settings
from verbatim.models import AudioFile
from verbatim.services import get_services


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    """Every upload test here runs on the local backend and on S3 (moto over HTTP)."""
    moto = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    return backend_settings(request.param, tmp_path, database_url, moto)


def stored_files(settings: Settings) -> list[Path]:
    """The stored media as local files (S3 objects are copied down to read them)."""
    return mirror_media(settings)


def temp_files(settings: Settings) -> list[Path]:
    return list(settings.tmp_dir.glob("*")) if settings.tmp_dir.exists() else []


async def audio_rows() -> int:
    async with get_services().sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(AudioFile)) or 0)


@pytest.mark.parametrize(
    ("name", "mime", "container", "codec", "channels", "has_video"),
    [
        ("speech.wav", "audio/wav", "wav", "pcm_s16le", 1, False),
        ("speech.mp3", "audio/mpeg", "mp3", "mp3", 1, False),
        ("speech.flac", "audio/flac", "flac", "flac", 1, False),
        ("speech.ogg", "audio/ogg; codecs=opus", "ogg", "opus", 1, False),
        ("speech.m4a", "audio/mp4", "mov,mp4,m4a,3gp,3g2,mj2", "aac", 1, False),
        ("speech.mp4", "video/mp4", "mov,mp4,m4a,3gp,3g2,mj2", "aac", 1, True),
        ("speech_stereo.wav", "audio/wav", "wav", "pcm_s16le", 2, False),
    ],
)
async def test_upload_formats_are_probed_not_trusted(
    alice: ApiUser,
    settings: Settings,
    name: str,
    mime: str,
    container: str,
    codec: str,
    channels: int,
    has_video: bool,
) -> None:
    path = FIXTURES / name
    # The client claims every file is an MP3; the stored type comes from the probe.
    r = await alice.upload(path)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["is_duplicate"] is False
    assert body["mime_type"] == mime
    assert body["container"] == container
    assert body["codec"] == codec
    assert body["channels"] == channels
    assert body["has_video"] is has_video
    assert 2.0 < body["duration"] < 15.0
    assert body["sample_rate"] in (16000, 22050, 24000, 44100, 48000)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert body["sha256"] == digest
    assert body["size_bytes"] == path.stat().st_size

    files = stored_files(settings)
    assert len(files) == 1
    relative = files[0].relative_to(settings.media_dir).as_posix()
    me = (await alice.get("/api/v1/auth/me")).json()
    parts = relative.split("/")
    assert parts[0] == "uploads" and parts[1] == f"user_{me['id']}"
    assert len(parts[2]) == 4 and len(parts[3]) == 2
    # A key of its own per row: a random part, then the safe name.
    assert re.fullmatch(rf"[0-9a-f]{{32}}_{re.escape(name)}", parts[4])
    assert files[0].read_bytes() == path.read_bytes()
    assert temp_files(settings) == []


async def test_same_bytes_twice_is_a_duplicate(alice: ApiUser, settings: Settings) -> None:
    first = await alice.upload(FIXTURES / "speech.wav")
    again = await alice.upload(FIXTURES / "speech.wav", filename="renamed.wav")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["is_duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    assert len(stored_files(settings)) == 1
    assert await audio_rows() == 1
    assert temp_files(settings) == []


async def test_same_bytes_for_two_users_are_two_files(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    a = await alice.upload(FIXTURES / "speech.wav")
    b = await bob.upload(FIXTURES / "speech.wav")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert len(stored_files(settings)) == 2


async def test_concurrent_identical_uploads_make_one_row_and_one_file(
    alice: ApiUser, settings: Settings
) -> None:
    responses = await asyncio.gather(*(alice.upload(FIXTURES / "speech.flac") for _ in range(6)))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.json()["is_duplicate"] is False for r in responses) == 1
    assert await audio_rows() == 1
    assert len(stored_files(settings)) == 1
    assert temp_files(settings) == []


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("empty.wav", 400, "empty_file"),
        ("not_audio.mp3", 415, "unsupported_media"),
        ("random.bin", 415, "unsupported_media"),
        ("truncated.mp3", 415, "unsupported_media"),
        ("image.wav", 415, "unsupported_media"),
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    alice: ApiUser, settings: Settings, name: str, status: int, code: str
) -> None:
    r = await alice.upload(FIXTURES / name)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text
    assert await audio_rows() == 0
    assert stored_files(settings) == []
    assert temp_files(settings) == []


async def test_upload_over_the_limit_is_413_while_streaming(
    tmp_path: Path, database_url: str, engine_pool: object
) -> None:
    from asgi_lifespan import LifespanManager

    from verbatim.app import create_app

    settings = make_settings(tmp_path, database_url, max_upload_bytes=50_000)
    app = create_app(settings, with_worker=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            user = await register(client)
            size = (FIXTURES / "speech.wav").stat().st_size
            assert size > 50_000
            r = await user.upload(FIXTURES / "speech.wav")
            assert r.status_code == 413
            assert r.json()["error"]["code"] == "file_too_large"
            assert r.json()["error"]["details"] == {"max_bytes": 50_000}

            # Without a Content-Length the limit still holds while streaming.
            async def body() -> object:
                boundary = b"XyZ"
                yield (
                    b"--XyZ\r\nContent-Disposition: form-data; "
                    b'name="file"; filename="a.wav"\r\n\r\n'
                )
                for _ in range(20):
                    yield os.urandom(10_000)
                yield b"\r\n--" + boundary + b"--\r\n"

            r = await client.post(
                "/api/v1/audio",
                content=body(),
                headers={**user.headers, "content-type": "multipart/form-data; boundary=XyZ"},
            )
            assert r.status_code == 413
            assert r.json()["error"]["code"] == "file_too_large"
            assert await audio_rows() == 0
            assert stored_files(settings) == []
            assert temp_files(settings) == []


async def test_malformed_requests(alice: ApiUser, settings: Settings) -> None:
    r = await alice.post(
        "/api/v1/audio", content=b"raw bytes", headers={"content-type": "audio/wav"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "multipart_required"
    r = await alice.post("/api/v1/audio", files={"other": ("a.wav", b"RIFF....", "audio/wav")})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "file_missing"
    r = await alice.post(
        "/api/v1/audio",
        content=b"garbage",
        headers={"content-type": "multipart/form-data; boundary=zzz"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] in ("malformed_multipart", "file_missing")
    r = await alice.client.post("/api/v1/audio", files={"file": ("a.wav", b"x", "audio/wav")})
    assert r.status_code == 401
    assert await audio_rows() == 0
    assert temp_files(settings) == []


async def test_hostile_filename_is_sanitised(alice: ApiUser, settings: Settings) -> None:
    r = await alice.upload(FIXTURES / "speech.wav", filename="../../etc/pass wd;rm -rf.wav")
    assert r.status_code == 201
    # The display name keeps only the last path component.
    assert r.json()["original_filename"] == "pass wd;rm -rf.wav"
    (stored,) = stored_files(settings)
    assert stored.is_relative_to(settings.media_dir)
    assert stored.name.endswith("_pass_wd_rm_-rf.wav")


async def test_list_get_filter_and_isolation(alice: ApiUser, bob: ApiUser) -> None:
    ids = []
    for name in ("speech.wav", "speech.mp3", "speech.flac"):
        ids.append((await alice.upload(FIXTURES / name)).json()["id"])
    bob_id = (await bob.upload(FIXTURES / "speech2.wav")).json()["id"]

    page = (await alice.get("/api/v1/audio", params={"limit": 2})).json()
    assert page["total"] == 3 and page["limit"] == 2 and len(page["items"]) == 2
    rest = (await alice.get("/api/v1/audio", params={"limit": 2, "offset": 2})).json()
    assert len(rest["items"]) == 1
    listed = {i["id"] for i in page["items"]} | {i["id"] for i in rest["items"]}
    assert listed == set(ids)
    assert bob_id not in listed
    assert (await alice.get("/api/v1/audio", params={"source_type": "upload"})).json()["total"] == 3
    assert (await alice.get("/api/v1/audio", params={"source_type": "download"})).json()[
        "total"
    ] == 0
    r = await alice.get("/api/v1/audio", params={"source_type": "ftp"})
    assert r.status_code == 422
    r = await alice.get("/api/v1/audio", params={"limit": 0})
    assert r.status_code == 422

    assert (await alice.get(f"/api/v1/audio/{ids[0]}")).json()["id"] == ids[0]
    for url in (f"/api/v1/audio/{ids[0]}", f"/api/v1/audio/{ids[0]}/content"):
        r = await bob.get(url)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "audio_not_found"
    assert (await bob.delete(f"/api/v1/audio/{ids[0]}")).status_code == 404
    assert (await alice.get(f"/api/v1/audio/{ids[0]}")).status_code == 200
    r = await alice.get("/api/v1/audio/not-a-uuid")
    assert r.status_code == 422
