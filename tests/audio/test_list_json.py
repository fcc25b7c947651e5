"""The audio list writes its rows straight to JSON (issue 15); each item must read exactly as
the same file does through the response model (GET /api/v1/audio/{id})."""

from __future__ import annotations

from tests.conftest import FIXTURES, ApiUser


async def test_list_items_are_the_single_reads(alice: ApiUser, bob: ApiUser) -> None:
    uploaded = [
        (await alice.upload(FIXTURES / name)).json()["id"] for name in ("speech.wav", "speech.mp4")
    ]
    listed = await alice.get("/api/v1/audio")
    assert listed.status_code == 200
    body = listed.json()
    assert [item["id"] for item in body["items"]] == list(reversed(uploaded))
    assert body["total"] == 2 and body["total_exact"] is True and body["has_more"] is False
    for item in body["items"]:
        single = (await alice.get(f"/api/v1/audio/{item['id']}")).json()
        assert item == single  # same keys, same values, same encodings (dates, enums)
    assert isinstance(body["items"][0]["created_at"], str)
    assert body["items"][0]["created_at"].endswith("Z")
    theirs = (await bob.get("/api/v1/audio")).json()
    assert theirs["items"] == [] and theirs["total"] == 0
