"""The topics.score job on stored chunks with real embeddings: which passages it quotes, with
which times; rejections remembered; other models' vectors and other users' chunks ignored."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import ApiUser
from tests.library.helpers import add_chunks, make_transcription

API = "/api/v1/topics"

CALL = [
    (0.0, 55.0, "Good morning everyone, thanks for joining. Let us start with a quick round."),
    (
        55.0,
        118.0,
        "The supplier cannot ship in February. We agreed to move the delivery to March, and "
        "the trucks will arrive in the first week.",
    ),
    (118.0, 170.0, "Finally the budget: we are under plan for the quarter and can hire."),
]
PETS = [(0.0, 20.0, "My dog sleeps all day while the cat chases birds in the garden.")]


async def settle(user: ApiUser, timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs: list[dict[str, Any]] = (await user.get("/api/v1/jobs", params={"limit": 500})).json()[
            "items"
        ]
        if all(j["status"] in ("completed", "failed", "cancelled") for j in jobs):
            return jobs
        await asyncio.sleep(0.2)
    raise AssertionError(f"jobs still running: {jobs}")


async def topics_of(user: ApiUser, tid: str, status: str | None = None) -> dict[str, Any]:
    r = await user.get(
        f"/api/v1/transcriptions/{tid}/topics", params={"status": status} if status else {}
    )
    return {a["topic_name"]: a for a in r.json()["items"]}


@pytest.mark.slow
async def test_scoring_quotes_the_matching_passage_and_remembers_rejections(
    alice: ApiUser, bob: ApiUser
) -> None:
    call = await make_transcription(alice, "Planning call", duration=170.0, segments=CALL)
    pets = await make_transcription(alice, "Pets", duration=20.0, segments=PETS)
    await add_chunks(alice, call, CALL)
    await add_chunks(alice, pets, PETS)
    # A chunk of another model that would match: never compared with this model's vectors.
    stray = await make_transcription(alice, "Old index")
    await add_chunks(alice, stray, [(0.0, 9.0, CALL[1][2])], model="some-older-model")

    r = await alice.post(
        API,
        json={
            "name": "Delivery schedule",
            "description": "Shipping dates, delays, moving a delivery to another month",
        },
    )
    delivery = r.json()["id"]
    await alice.post(API, json={"name": "Pets", "description": "Dogs, cats and other pets"})
    jobs = await settle(alice)
    assert [j["status"] for j in jobs] == ["completed", "completed"], jobs
    assert {j["detail"]["transcriptions"] for j in jobs} == {3}

    found = await topics_of(alice, call)
    assert list(found) == ["Delivery schedule"]
    suggestion = found["Delivery schedule"]
    best = suggestion["passages"][0]
    assert (best["chunk_index"], best["start_time"], best["end_time"]) == (1, 55.0, 118.0)
    assert "move the delivery to March" in best["text"]
    assert suggestion["ai_confidence"] == best["similarity"] >= 0.35
    # Only passages at or above the threshold are quoted: the greeting and budget are not.
    assert suggestion["ai_reasoning"].startswith(
        '1 passage matches the topic "Delivery schedule": [00:55-01:58] "The supplier'
    )
    assert "budget" not in suggestion["ai_reasoning"]
    assert list(await topics_of(alice, pets)) == ["Pets"]
    assert await topics_of(alice, stray) == {}

    # Rejected, then the topic's text changes and everything is scored again.
    r = await alice.put(
        f"/api/v1/transcriptions/{call}/topics/{delivery}", json={"status": "rejected"}
    )
    assert r.status_code == 200
    r = await alice.patch(
        f"{API}/{delivery}", json={"description": "The delivery moved to March; trucks"}
    )
    assert r.json()["scoring_job_id"]
    await settle(alice)
    assert await topics_of(alice, call) == {}
    rejected = (await topics_of(alice, call, "rejected"))["Delivery schedule"]
    assert rejected["ai_reasoning"] == suggestion["ai_reasoning"]  # the row was left alone

    # A text that no longer matches removes a pending suggestion.
    pets_topic = next(t for t in (await alice.get(API)).json()["items"] if t["name"] == "Pets")
    await alice.patch(f"{API}/{pets_topic['id']}", json={"description": "Tax returns"})
    await settle(alice)
    assert await topics_of(alice, pets) == {}

    # Bob's topic with the same words sees none of Alice's chunks.
    r = await bob.post(API, json={"name": "Pets", "description": "Dogs, cats and other pets"})
    jobs = await settle(bob)
    assert jobs[0]["status"] == "completed" and jobs[0]["detail"]["suggested"] == 0
    assert (await bob.get(f"{API}/{r.json()['id']}/transcriptions")).json()["total"] == 0


@pytest.mark.slow
async def test_inline_reindex_queues_scoring_of_the_new_chunks(alice: ApiUser) -> None:
    """`verbatim search reindex` without --queue writes chunks itself: scoring follows too."""
    import uuid

    from verbatim.search.reindex import reindex
    from verbatim.services import get_services

    call = await make_transcription(alice, "Planning call", duration=170.0, segments=CALL)
    r = await alice.post(API, json={"name": "Delivery", "description": "Moving a delivery date"})
    assert r.status_code == 201
    await settle(alice)
    assert await topics_of(alice, call) == {}  # not indexed yet: nothing to compare

    services = get_services()
    report = await reindex(services.sessionmaker, services.settings, [uuid.UUID(call)])
    assert report.indexed == 1
    jobs = await settle(alice)
    scoring = [j for j in jobs if j["type"] == "topic_scoring" and j["transcription_id"] == call]
    assert len(scoring) == 1 and scoring[0]["status"] == "completed"
    found = await topics_of(alice, call)
    assert "move the delivery to March" in found["Delivery"]["ai_reasoning"]
