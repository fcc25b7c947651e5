from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tests.audio.test_upload import stored_files
from tests.conftest import FIXTURES, ApiUser
from verbatim.config import Settings


async def _upload(user: ApiUser, name: str = "speech.mp3") -> dict[str, object]:
    r = await user.upload(FIXTURES / name)
    assert r.status_code == 201
    body: dict[str, object] = r.json()
    return body


async def test_full_content_with_caching_headers(alice: ApiUser) -> None:
    audio = await _upload(alice)
    data = (FIXTURES / "speech.mp3").read_bytes()
    r = await alice.get(f"/api/v1/audio/{audio['id']}/content")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "audio/mpeg"
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"] == f'"{audio["sha256"]}"'
    assert r.headers["last-modified"].endswith("GMT")
    assert "speech.mp3" in r.headers["content-disposition"]
    assert r.headers["cache-control"].startswith("private")


async def test_range_requests(alice: ApiUser) -> None:
    audio = await _upload(alice)
    data = (FIXTURES / "speech.mp3").read_bytes()
    url = f"/api/v1/audio/{audio['id']}/content"

    r = await alice.get(url, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206
    assert r.content == data[:100]
    assert r.headers["content-range"] == f"bytes 0-99/{len(data)}"

    r = await alice.get(url, headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.content == data[100:]

    r = await alice.get(url, headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == data[-50:]

    r = await alice.get(url, headers={"Range": f"bytes=10-{len(data) + 500}"})
    assert r.status_code == 206 and r.content == data[10:]

    for bad in (f"bytes={len(data)}-", "bytes=50-10", "bytes=-0", "items=0-1"):
        r = await alice.get(url, headers={"Range": bad})
        assert r.status_code == 416, bad
        assert r.json()["error"]["code"] == "range_not_satisfiable"
        assert r.headers["content-range"] == f"bytes */{len(data)}"


async def test_conditional_requests(alice: ApiUser) -> None:
    audio = await _upload(alice)
    url = f"/api/v1/audio/{audio['id']}/content"
    etag = (await alice.get(url)).headers["etag"]
    r = await alice.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    r = await alice.get(url, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=5), usegmt=True)
    assert (await alice.get(url, headers={"If-Modified-Since": later})).status_code == 304
    earlier = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    assert (await alice.get(url, headers={"If-Modified-Since": earlier})).status_code == 200


async def test_delete_removes_row_and_file(alice: ApiUser, settings: Settings) -> None:
    audio = await _upload(alice)
    assert len(stored_files(settings)) == 1
    r = await alice.delete(f"/api/v1/audio/{audio['id']}")
    assert r.status_code == 204
    assert (await alice.get(f"/api/v1/audio/{audio['id']}")).status_code == 404
    assert (await alice.get(f"/api/v1/audio/{audio['id']}/content")).status_code == 404
    assert stored_files(settings) == []
    assert (await alice.delete(f"/api/v1/audio/{audio['id']}")).status_code == 404
    # The same bytes can come back as a new file afterwards.
    again = await alice.upload(FIXTURES / "speech.mp3")
    assert again.status_code == 201 and again.json()["id"] != audio["id"]
