"""The local backend verifies its presigned URLs (moto does not verify S3's, so these run here):
an expired or tampered URL is refused with 403 and nothing is written."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import FIXTURES, ApiUser, make_settings, register
from tests.s3 import MotoS3, leftovers, make_s3_settings, object_keys
from tests.uploads.test_direct_upload import create, put, wav_bytes
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.storage import presign

MIB = 1024 * 1024


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path, database_url, multipart_threshold_bytes=5 * MIB, multipart_part_size_bytes=5 * MIB
    )


def forged(settings: Settings, claims: presign.Claims) -> str:
    """A URL signed with the service's real key (as if issued by it) for chosen claims."""
    key = presign.derive_key(settings.resolved_secret_key())
    return "http://verbatim.test" + presign.URL_PREFIX + presign.sign(key, claims)


def _token(url: str) -> str:
    return urlsplit(url).path.removeprefix(presign.URL_PREFIX)


def _signed_key(url: str) -> str:
    """The key a URL of the service is signed for (its claims are readable, only signed)."""
    payload = _token(url).partition(".")[0]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["key"])


async def test_expired_put_url_is_refused_and_writes_nothing(
    alice: ApiUser, settings: Settings
) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    expired = presign.Claims(
        "PUT", _signed_key(upload["url"]), int(time.time()) - 1, max_bytes=len(data)
    )
    r = await put(alice, forged(settings, expired), data)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "signature_expired"
    assert object_keys(settings) == [] and leftovers(settings) == []
    # The real URL still works.
    assert (await put(alice, upload["url"], data)).status_code == 200


async def test_tampered_urls_are_refused_and_write_nothing(
    alice: ApiUser, settings: Settings
) -> None:
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    token = _token(upload["url"])
    payload, _, signature = token.partition(".")
    # Another key under the same signature, a cut signature, another secret, garbage.
    other = presign.sign(
        presign.derive_key("not the service secret"),
        presign.Claims("PUT", _signed_key(upload["url"]), int(time.time()) + 60),
    )
    swapped = presign.sign(
        presign.derive_key(settings.resolved_secret_key()),
        presign.Claims("PUT", "uploads/user_x/2026/11/evil.wav", int(time.time()) + 60),
    ).partition(".")[0]
    for bad in (
        f"{swapped}.{signature}",
        f"{payload}.{signature[:-4]}",
        other,
        "not-a-token",
        f"{payload}.",
    ):
        r = await alice.client.put(f"{presign.URL_PREFIX}{bad}", content=data)
        assert r.status_code == 403, bad
        assert r.json()["error"]["code"] == "signature_invalid"
    # A PUT URL cannot be used to read, nor a GET URL to write.
    r = await alice.client.get(f"{presign.URL_PREFIX}{token}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "signature_invalid"
    assert object_keys(settings) == [] and leftovers(settings) == []


async def test_body_over_the_signed_size_is_413_while_streaming(
    alice: ApiUser, settings: Settings
) -> None:
    upload = await create(alice, "a.wav", 1000)

    async def body() -> object:  # no Content-Length: the limit holds while receiving
        for _ in range(5):
            yield b"x" * 600

    r = await alice.client.put(upload["url"], content=body())
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert object_keys(settings) == [] and leftovers(settings) == []


async def test_part_urls_are_bound_to_their_upload(alice: ApiUser, settings: Settings) -> None:
    data = wav_bytes(11 * MIB)
    upload = await create(alice, "long.wav", len(data))
    part = upload["multipart"]["parts"][0]
    r = await alice.delete(f"/api/v1/uploads/{upload['id']}")
    assert r.status_code == 204
    r = await put(alice, part["url"], data[: 5 * MIB])
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_aborted"
    assert object_keys(settings) == [] and leftovers(settings) == []


async def test_presigned_get_serves_ranges_until_it_expires(
    alice: ApiUser, settings: Settings
) -> None:
    data = (FIXTURES / "speech.mp3").read_bytes()
    audio = (await alice.upload(FIXTURES / "speech.mp3")).json()
    key = object_keys(settings)[0]
    now = int(time.time())
    good = presign.Claims(
        "GET", key, now + 60, filename="talk.mp3", content_type="audio/mpeg", inline=False
    )
    r = await alice.client.get(forged(settings, good))  # no credentials needed
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "audio/mpeg"
    assert r.headers["content-disposition"].startswith('attachment; filename="talk.mp3"')
    r = await alice.client.get(forged(settings, good), headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    expired = presign.Claims("GET", key, now - 5, filename="talk.mp3")
    r = await alice.client.get(forged(settings, expired))
    assert r.status_code == 403 and r.json()["error"]["code"] == "signature_expired"
    assert audio["id"]


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_local_routes_do_not_exist_with_s3(
    tmp_path: Path, database_url: str, moto_s3: MotoS3, method: str
) -> None:
    settings = make_s3_settings(tmp_path, database_url, moto_s3.endpoint_url, moto_s3.new_bucket())
    app = create_app(settings, with_worker=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await register(client)
            token = presign.sign(
                presign.derive_key(settings.resolved_secret_key()),
                presign.Claims(method, "staging/x", int(time.time()) + 60),
            )
            r = await client.request(method, f"{presign.URL_PREFIX}{token}", content=b"x")
            assert r.status_code == 404
