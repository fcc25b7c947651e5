"""VERBATIM_STORE_TRANSCODED=opus: lossless uploads are stored as Opus; the record keeps the
original's checksum, size and type, so dedup and the API see the upload, not the copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import pytest

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from tests.s3 import backend_settings, fetch, object_keys, read_object
from tests.uploads.test_direct_upload import create, put
from verbatim.config import Settings
from verbatim.housekeeping.service import check_storage
from verbatim.services import get_services


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    moto = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    return backend_settings(request.param, tmp_path, database_url, moto, store_transcoded="opus")


@pytest.mark.slow
async def test_lossless_upload_is_stored_as_opus(
    alice: ApiUser, settings: Settings, tmp_path: Path
) -> None:
    original = (FIXTURES / "speech.wav").read_bytes()
    r = await alice.upload(FIXTURES / "speech.wav")
    assert r.status_code == 201, r.text
    audio = r.json()
    assert audio["sha256"] == hashlib.sha256(original).hexdigest()
    assert audio["size_bytes"] == len(original) and audio["mime_type"] == "audio/wav"
    assert audio["stored_mime_type"] == "audio/ogg; codecs=opus"
    assert 0 < audio["stored_size_bytes"] < len(original) / 4
    (key,) = object_keys(settings)
    stored = read_object(settings, key)
    assert len(stored) == audio["stored_size_bytes"]
    copy = tmp_path / "stored.ogg"
    copy.write_bytes(stored)
    with av.open(str(copy)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        assert float(stream.duration * stream.time_base) == pytest.approx(audio["duration"], 0.05)

    content = await fetch(alice, f"/api/v1/audio/{audio['id']}/content")
    assert content.status_code == 200 and content.content == stored
    assert content.headers["content-type"].startswith("audio/ogg")
    # Dedup keys on the original bytes.
    again = await alice.upload(FIXTURES / "speech.wav")
    assert again.status_code == 200 and again.json()["id"] == audio["id"]
    services = get_services()
    report = await check_storage(services.sessionmaker, services.storage)
    assert report.consistent and report.transcoded_files == 1
    assert report.bytes_saved == len(original) - audio["stored_size_bytes"]

    r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={"language": "en"})
    assert r.status_code == 202, r.text
    job = await wait_for_job(alice, r.json()["job_id"])
    assert job["status"] == "completed", job
    text = (await alice.get(f"/api/v1/transcriptions/{r.json()['transcription_id']}")).json()
    assert "fox" in text["text"].lower()


async def test_lossy_uploads_are_stored_as_they_came(alice: ApiUser, settings: Settings) -> None:
    r = await alice.upload(FIXTURES / "speech.mp3")
    assert r.status_code == 201
    assert r.json()["stored_size_bytes"] is None and r.json()["stored_mime_type"] is None
    (key,) = object_keys(settings)
    assert read_object(settings, key) == (FIXTURES / "speech.mp3").read_bytes()


async def test_direct_upload_of_flac_is_transcoded(alice: ApiUser, settings: Settings) -> None:
    data = (FIXTURES / "speech.flac").read_bytes()
    upload = await create(alice, "a.flac", len(data))
    assert (await put(alice, upload["url"], data)).status_code == 200
    r = await alice.post(upload["complete_url"])
    assert r.status_code == 201, r.text
    assert r.json()["codec"] == "flac"
    assert r.json()["stored_mime_type"] == "audio/ogg; codecs=opus"
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    (key,) = object_keys(settings)
    assert key.startswith("uploads/")
