"""If-Range on /audio/{id}/content (local backend: the API serves the bytes; with S3 the client
follows the redirect and S3 evaluates If-Range against its own ETag)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tests.audio.test_content_http import _upload
from tests.conftest import FIXTURES, ApiUser


async def test_stale_if_range_gets_the_whole_file(alice: ApiUser) -> None:
    audio = await _upload(alice)
    data = (FIXTURES / "speech.mp3").read_bytes()
    url = f"/api/v1/audio/{audio['id']}/content"
    first = await alice.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    old_date = format_datetime(datetime.now(UTC) - timedelta(days=3), usegmt=True)
    for stale in ('"0000"', f"W/{etag}", old_date, "garbage"):
        r = await alice.get(url, headers={"Range": "bytes=0-9", "If-Range": stale})
        assert r.status_code == 200, stale
        assert r.content == data
        assert "content-range" not in r.headers
    for fresh in (etag, modified):
        r = await alice.get(url, headers={"Range": "bytes=0-9", "If-Range": fresh})
        assert r.status_code == 206, fresh
        assert r.content == data[:10]
