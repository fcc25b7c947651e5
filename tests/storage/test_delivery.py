"""Media and export delivery on both backends: the API streams (local) or redirects to a
short-lived presigned GET (S3); Range, caching headers and 304s either way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import backend_settings, delete_object, fetch, object_keys
from verbatim.config import Settings
from verbatim.models import AudioFile, Segment, Transcription, TranscriptionStatus
from verbatim.services import get_services


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    moto = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    return backend_settings(request.param, tmp_path, database_url, moto)


async def upload(user: ApiUser, name: str = "speech.mp3") -> dict[str, Any]:
    r = await user.upload(FIXTURES / name, filename="Café talk.mp3")
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_content_with_ranges_and_caching_headers(alice: ApiUser, settings: Settings) -> None:
    audio = await upload(alice)
    data = (FIXTURES / "speech.mp3").read_bytes()
    url = f"/api/v1/audio/{audio['id']}/content"

    r = await fetch(alice, url)
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "audio/mpeg"
    api = r.history[0] if r.history else r  # what the API itself answered
    assert api.headers["etag"] == f'"{audio["sha256"]}"'
    assert api.headers["last-modified"].endswith("GMT")
    assert api.headers["cache-control"].startswith("private")
    disposition = api.headers["content-disposition"]
    assert disposition.startswith('inline; filename="Cafe_talk.mp3"')
    assert "filename*=UTF-8''Caf%C3%A9%20talk.mp3" in disposition
    if settings.storage == "s3":
        assert api.status_code == 307 and api.headers["cache-control"] == "private, no-store"
        location = urlsplit(api.headers["location"])
        assert location.netloc == urlsplit(str(settings.s3_endpoint_url)).netloc
        query = parse_qs(location.query)
        assert query["X-Amz-Expires"] == [str(settings.presigned_get_expires_s)]
        assert "X-Amz-Signature" in query
        assert query["response-content-disposition"] == [disposition]
        # The object itself is served with the same name and type.
        assert r.headers["content-disposition"] == disposition
    else:
        assert not r.history

    for header, expected, body in (
        ("bytes=0-99", f"bytes 0-99/{len(data)}", data[:100]),
        ("bytes=100-", f"bytes 100-{len(data) - 1}/{len(data)}", data[100:]),
        ("bytes=-50", f"bytes {len(data) - 50}-{len(data) - 1}/{len(data)}", data[-50:]),
    ):
        r = await fetch(alice, url, {"Range": header})
        assert r.status_code == 206, header
        assert r.headers["content-range"] == expected
        assert r.content == body


async def test_conditional_requests_are_answered_before_storage(
    alice: ApiUser, settings: Settings
) -> None:
    audio = await upload(alice)
    url = f"/api/v1/audio/{audio['id']}/content"
    etag = f'"{audio["sha256"]}"'
    r = await alice.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == etag and "location" not in r.headers
    r = await alice.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
    assert r.status_code == 304
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=5), usegmt=True)
    assert (await alice.get(url, headers={"If-Modified-Since": later})).status_code == 304
    earlier = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    r = await fetch(alice, url, {"If-Modified-Since": earlier})
    assert r.status_code == 200
    r = await fetch(alice, url, {"If-None-Match": '"other"'})
    assert r.status_code == 200


async def test_another_user_gets_404_and_missing_media_is_reported(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    audio = await upload(alice)
    url = f"/api/v1/audio/{audio['id']}/content"
    r = await bob.get(url)
    assert r.status_code == 404 and r.json()["error"]["code"] == "audio_not_found"
    r = await bob.get(url, headers={"If-None-Match": f'"{audio["sha256"]}"'})
    assert r.status_code == 404  # no 304 leaks that the file exists
    (key,) = object_keys(settings)
    delete_object(settings, key)
    r = await alice.get(url)
    assert r.status_code == 404 and r.json()["error"]["code"] == "media_missing"


async def completed_transcription(user: ApiUser, audio_id: str) -> uuid.UUID:
    """A finished transcription written straight to the database (no model run needed)."""
    async with get_services().sessionmaker() as session:
        audio = await session.get(AudioFile, uuid.UUID(audio_id))
        assert audio is not None
        transcription = Transcription(
            user_id=audio.user_id,
            tenant_id=audio.tenant_id,
            audio_file_id=audio.id,
            status=TranscriptionStatus.completed,
            engine="faster-whisper",
            model_name="tiny.en",
            language="en",
            text="Hello there. General Kenobi.",
            completed_at=datetime.now(UTC),
        )
        session.add(transcription)
        await session.flush()
        for index, (start, end, text) in enumerate(
            [(0.0, 1.5, "Hello there."), (1.5, 3.0, "General Kenobi.")]
        ):
            session.add(
                Segment(
                    transcription_id=transcription.id,
                    index=index,
                    start=start,
                    end=end,
                    text=text,
                    words=[],
                )
            )
        await session.commit()
        return transcription.id


async def test_export_through_a_presigned_url(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    audio = await upload(alice)
    tid = await completed_transcription(alice, audio["id"])
    direct = await alice.get(f"/api/v1/transcriptions/{tid}/export", params={"format": "srt"})
    assert direct.status_code == 200
    r = await alice.get(
        f"/api/v1/transcriptions/{tid}/export", params={"format": "srt", "presigned": "true"}
    )
    assert r.status_code == 200, r.text
    link = r.json()
    assert link["filename"].endswith(".srt")
    assert direct.headers["content-type"].startswith(link["content_type"])
    expires = datetime.fromisoformat(link["expires_at"])
    assert (
        timedelta(0)
        < expires - datetime.now(UTC)
        <= timedelta(seconds=settings.presigned_get_expires_s)
    )
    # Anyone holding the link can download it, without credentials, until it expires.
    if settings.storage == "s3":
        async with httpx.AsyncClient(timeout=30) as anonymous:
            got = await anonymous.get(link["url"])
    else:
        assert link["url"].startswith("http://verbatim.test/api/v1/storage/local/")
        got = await alice.client.get(link["url"])
    assert got.status_code == 200
    assert got.content == direct.content
    assert got.headers["content-disposition"].startswith("attachment;")
    assert any(k.startswith("exports/") for k in object_keys(settings))
    r = await bob.get(
        f"/api/v1/transcriptions/{tid}/export", params={"format": "srt", "presigned": "true"}
    )
    assert r.status_code == 404
