# ruff: noqa: RUF001 - the point of these tests is look-alike characters
"""GET /api/v1/audio/downloads lists the caller's downloads; hosts are normalised as IDNA does
before the up-front check (issue 7, section 8)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import ApiUser, register
from verbatim.downloads.guard import UrlRefused, normalize_host, validate_url
from verbatim.models import Job, JobType
from verbatim.services import get_services

UNICODE_LOOPBACK = [
    "http://①②⑦.0.0.1/a.mp3",  # circled digits
    "http://１２７.０.０.１/a.mp3",  # fullwidth digits
    "http://127。0。0。1/a.mp3",  # ideographic full stops
    "http://127．0．0．1/a.mp3",  # fullwidth full stops
    "http://127｡0｡0｡1/a.mp3",  # halfwidth ideographic full stops
    "http://①②⑦｡①/a.mp3",  # short form, circled
    "http://⑩.0.0.1/a.mp3",  # a private network
    "http://①⑥⑨.②⑤④.①⑥⑨.②⑤④/latest/meta-data/",  # cloud metadata
    "http://ｌｏｃａｌｈｏｓｔ/a.mp3",  # fullwidth letters
    "http://LOCALHOST。/a.mp3",
]


@pytest.mark.parametrize("url", UNICODE_LOOPBACK)
def test_unicode_forms_of_internal_hosts_are_refused_up_front(url: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        validate_url(url)
    assert refused.value.code == "blocked_destination"


def test_normal_names_pass_and_are_encoded_like_idna() -> None:
    assert validate_url("https://example.com/a.mp3") == "https://example.com/a.mp3"
    assert validate_url("https://bücher.example/a.mp3") == "https://bücher.example/a.mp3"
    assert normalize_host("bücher.example") == "xn--bcher-kva.example"
    assert normalize_host("ＥＸＡＭＰＬＥ。com") == "example.com"
    with pytest.raises(UrlRefused) as refused:
        normalize_host("a" * 70 + "é.example")  # a label longer than DNS allows
    assert refused.value.code == "invalid_url"


async def test_unicode_hosts_get_422_and_use_no_rate_limit_slot(alice: ApiUser) -> None:
    for url in UNICODE_LOOPBACK:
        r = await alice.post("/api/v1/audio/downloads", json={"url": url})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["error"]["code"] == "blocked_destination", url
    # No job was created, so no slot of VERBATIM_DOWNLOAD_RATE_PER_HOUR was used.
    async with get_services().sessionmaker() as session:
        jobs = (await session.scalars(select(Job).where(Job.type == JobType.download))).all()
    assert jobs == []


async def test_get_downloads_lists_only_my_download_jobs(alice: ApiUser) -> None:
    bob = await register(alice.client, "bob-downloads@example.com")
    services = get_services()
    # Rows only (no queue job): listing is what is tested, not downloading.
    me = (await alice.get("/api/v1/auth/me")).json()
    other = (await bob.get("/api/v1/auth/me")).json()
    async with services.sessionmaker() as session:
        for owner, kind in [
            (me, JobType.download),
            (me, JobType.download),
            (me, JobType.download),
            (me, JobType.transcription),
            (other, JobType.download),
        ]:
            session.add(
                Job(user_id=owner["id"], tenant_id=owner["tenant_id"], type=kind, stage="queued")
            )
        await session.commit()

    r = await alice.get("/api/v1/audio/downloads")
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 3
    assert {j["type"] for j in page["items"]} == {"download"}
    r = await alice.get("/api/v1/audio/downloads", params={"limit": 2, "offset": 2})
    assert r.json()["total"] == 3 and len(r.json()["items"]) == 1
    r = await alice.get("/api/v1/audio/downloads", params={"status": "completed"})
    assert r.json()["total"] == 0
    r = await bob.get("/api/v1/audio/downloads")
    assert r.json()["total"] == 1
    assert (await alice.client.get("/api/v1/audio/downloads")).status_code == 401
