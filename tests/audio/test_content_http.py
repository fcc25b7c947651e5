"""HTTP conformance of /audio/{id}/content: HEAD (also for the S3 redirect) and If-Range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import backend_settings
from verbatim.config import Settings


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    moto = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    return backend_settings(request.param, tmp_path, database_url, moto)


async def _upload(user: ApiUser) -> dict[str, Any]:
    r = await user.upload(FIXTURES / "speech.mp3")
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_head_has_the_headers_of_get_and_no_body(alice: ApiUser, settings: Settings) -> None:
    audio = await _upload(alice)
    url = f"/api/v1/audio/{audio['id']}/content"
    get = await alice.get(url)
    head = await alice.client.head(url, headers=alice.headers)
    assert head.status_code == get.status_code  # 200 local, 307 with S3
    assert head.content == b""
    for name in ("etag", "last-modified", "content-disposition", "cache-control"):
        assert head.headers[name] == get.headers[name]
    if settings.storage == "s3":
        assert head.status_code == 307 and head.headers["location"]
    else:
        assert head.status_code == 200
        assert head.headers["content-length"] == str(audio["size_bytes"])
        assert head.headers["accept-ranges"] == "bytes"
        assert head.headers["content-type"] == "audio/mpeg"
        ranged = await alice.client.head(url, headers={**alice.headers, "Range": "bytes=0-9"})
        assert ranged.status_code == 206 and ranged.headers["content-length"] == "10"
        assert ranged.content == b""
