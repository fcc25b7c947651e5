"""Topics through HTTP on the real database: CRUD with names unique per user, review of
assignments, listings, ownership and bad input."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from tests.conftest import ApiUser
from tests.library.helpers import count, make_transcription
from verbatim.models import (
    AssignedBy,
    AssignmentStatus,
    Job,
    JobType,
    Topic,
    TranscriptionStatus,
    TranscriptionTopic,
)
from verbatim.services import get_services

API = "/api/v1/topics"


async def new_topic(user: ApiUser, name: str, description: str | None = None) -> dict[str, object]:
    r = await user.post(API, json={"name": name, "description": description})
    assert r.status_code == 201, r.text
    topic: dict[str, object] = r.json()
    return topic


async def suggest(transcription_id: str, topic_id: object, confidence: float) -> None:
    """A suggestion as the scorer writes it (the scorer itself is tested in test_scoring)."""
    async with get_services().sessionmaker() as session, session.begin():
        session.add(
            TranscriptionTopic(
                transcription_id=uuid.UUID(transcription_id),
                topic_id=uuid.UUID(str(topic_id)),
                status=AssignmentStatus.suggested,
                assigned_by=AssignedBy.ai,
                ai_confidence=confidence,
                ai_reasoning="1 passage matches",
                ai_passages=[
                    {
                        "chunk_index": 0,
                        "start_time": 1.0,
                        "end_time": 9.5,
                        "text": "x",
                        "similarity": confidence,
                    }
                ],
            )
        )


async def test_topic_crud_unique_names_and_background_scoring(alice: ApiUser, bob: ApiUser) -> None:
    topic = await new_topic(alice, "  Delivery   schedule ", "Shipping dates and delays")
    assert topic["name"] == "Delivery schedule"
    assert topic["counts"] == {"suggested": 0, "accepted": 0, "rejected": 0}
    job_id = topic["scoring_job_id"]
    async with get_services().sessionmaker() as session:
        job = await session.get(Job, uuid.UUID(str(job_id)))
        assert job is not None and job.type is JobType.topic_scoring
        assert job.payload == {"topic_id": topic["id"]}

    # Unique per user, whatever the case; another user may use the same name.
    r = await alice.post(API, json={"name": "DELIVERY SCHEDULE"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "topic_name_taken"
    await new_topic(bob, "Delivery schedule")
    budget = await new_topic(alice, "budget")

    r = await alice.patch(f"{API}/{budget['id']}", json={"name": "Delivery Schedule"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "topic_name_taken"
    r = await alice.patch(f"{API}/{budget['id']}", json={"name": "Budget", "description": "Money"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Budget" and r.json()["description"] == "Money"
    assert r.json()["scoring_job_id"] is not None  # the text changed: re-scored
    r = await alice.patch(f"{API}/{budget['id']}", json={"description": "Money"})
    assert r.json()["scoring_job_id"] is None  # nothing changed
    async with get_services().sessionmaker() as session:
        version = await session.scalar(
            select(Topic.version).where(Topic.id == uuid.UUID(str(budget["id"])))
        )
    assert version == 2

    r = await alice.get(API)
    assert [t["name"] for t in r.json()["items"]] == ["Budget", "Delivery schedule"]
    r = await alice.get(f"{API}/{topic['id']}")
    assert r.status_code == 200 and r.json()["description"] == "Shipping dates and delays"

    r = await alice.delete(f"{API}/{budget['id']}")
    assert r.status_code == 204
    assert (await alice.get(f"{API}/{budget['id']}")).status_code == 404
    # The name is free again.
    await new_topic(alice, "budget")


async def test_concurrent_creates_of_one_name_give_one_topic_and_a_409(alice: ApiUser) -> None:
    answers = await asyncio.gather(*(alice.post(API, json={"name": "Hiring"}) for _ in range(4)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409, 409], [r.text for r in answers]
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {
        "topic_name_taken"
    }
    assert await count(Topic) == 1


async def test_review_accept_reject_assign_by_hand_and_listings(alice: ApiUser) -> None:
    high = await make_transcription(alice, "high")
    low = await make_transcription(alice, "low")
    manual = await make_transcription(alice, "manual")
    topic = await new_topic(alice, "Delivery")
    other = await new_topic(alice, "Budget")
    await suggest(high, topic["id"], 0.71)
    await suggest(low, topic["id"], 0.42)
    await suggest(high, other["id"], 0.5)

    r = await alice.get(f"{API}/{topic['id']}/transcriptions")
    items = r.json()["items"]
    assert [(i["title"], i["ai_confidence"], i["status"]) for i in items] == [
        ("high", 0.71, "suggested"),
        ("low", 0.42, "suggested"),
    ]
    assert items[0]["passages"][0]["start_time"] == 1.0
    assert items[0]["assigned_by"] == "ai" and items[0]["user_reviewed"] is False

    base = "/api/v1/transcriptions"
    r = await alice.put(f"{base}/{low}/topics/{topic['id']}", json={"status": "rejected"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["user_reviewed"] is True
    assert r.json()["assigned_by"] == "ai" and r.json()["reviewed_at"] is not None
    r = await alice.put(f"{base}/{high}/topics/{topic['id']}", json={"status": "accepted"})
    assert r.json()["status"] == "accepted" and r.json()["ai_confidence"] == 0.71
    # By hand (no body: accepted).
    r = await alice.put(f"{base}/{manual}/topics/{topic['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["assigned_by"] == "user" and r.json()["ai_confidence"] is None

    r = await alice.get(f"{API}/{topic['id']}/transcriptions")
    assert [i["title"] for i in r.json()["items"]] == ["high", "manual"]
    r = await alice.get(f"{API}/{topic['id']}/transcriptions", params={"status": "rejected"})
    assert [i["title"] for i in r.json()["items"]] == ["low"]
    r = await alice.get(API)
    counts = {t["name"]: t["counts"] for t in r.json()["items"]}
    assert counts == {
        "Budget": {"suggested": 1, "accepted": 0, "rejected": 0},
        "Delivery": {"suggested": 0, "accepted": 2, "rejected": 1},
    }
    r = await alice.get(f"{base}/{high}/topics")
    assert [(i["topic_name"], i["status"]) for i in r.json()["items"]] == [
        ("Delivery", "accepted"),
        ("Budget", "suggested"),
    ]

    # Concurrent decisions on a new pair: one row, every answer a 200.
    extra = await make_transcription(alice, "extra")
    answers = await asyncio.gather(
        *(
            alice.put(f"{base}/{extra}/topics/{other['id']}", json={"status": s})
            for s in ("accepted", "rejected", "accepted", "rejected")
        )
    )
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert (
        await count(TranscriptionTopic, TranscriptionTopic.transcription_id == uuid.UUID(extra))
        == 1
    )
    assert (await alice.delete(f"{base}/{extra}")).status_code == 204

    # Deleting the transcription removes its assignments; deleting a topic removes its own.
    assert (await alice.delete(f"{base}/{high}")).status_code == 204
    assert await count(TranscriptionTopic) == 2
    assert (await alice.delete(f"{API}/{topic['id']}")).status_code == 204
    assert await count(TranscriptionTopic) == 0
    assert (await alice.get(f"{base}/{manual}")).status_code == 200


async def test_another_user_gets_404_and_sees_no_topics(alice: ApiUser, bob: ApiUser) -> None:
    mine = await make_transcription(alice, "mine")
    theirs = await make_transcription(bob, "theirs")
    topic = await new_topic(alice, "Secret plans")
    bobs_topic = await new_topic(bob, "Bob's")
    await suggest(mine, topic["id"], 0.6)
    tid = topic["id"]

    calls = [
        bob.get(f"{API}/{tid}"),
        bob.patch(f"{API}/{tid}", json={"name": "x"}),
        bob.get(f"{API}/{tid}/transcriptions"),
        bob.delete(f"{API}/{tid}"),
        bob.get(f"/api/v1/transcriptions/{mine}/topics"),
        bob.put(f"/api/v1/transcriptions/{mine}/topics/{tid}", json={"status": "rejected"}),
        # His transcription, her topic; and her transcription, his topic.
        bob.put(f"/api/v1/transcriptions/{theirs}/topics/{tid}"),
        bob.put(f"/api/v1/transcriptions/{mine}/topics/{bobs_topic['id']}"),
    ]
    for r in await asyncio.gather(*calls):
        assert r.status_code == 404, (r.request.method, r.request.url, r.text)
        assert r.json()["error"]["code"] in ("topic_not_found", "transcription_not_found")
    r = await bob.get(API)
    assert [t["name"] for t in r.json()["items"]] == ["Bob's"]
    r = await alice.get(f"{API}/{tid}/transcriptions")
    assert [(i["title"], i["status"]) for i in r.json()["items"]] == [("mine", "suggested")]
    assert await count(TranscriptionTopic) == 1
    assert (await alice.get(f"{API}/{tid}")).json()["name"] == "Secret plans"


async def test_bad_input_is_refused_with_a_code_and_stores_nothing(alice: ApiUser) -> None:
    t = await make_transcription(alice, "t", status=TranscriptionStatus.completed)
    topic = await new_topic(alice, "Existing")
    jobs_before = await count(Job)

    async def refused(method: str, url: str, status: int, code: str, **kw: object) -> None:
        r = await getattr(alice, method)(url, **kw)
        assert r.status_code == status, (url, kw, r.text)
        assert r.json()["error"]["code"] == code, r.text

    for body in (
        {},
        {"name": ""},
        {"name": " \t "},
        {"name": "x" * 101},
        {"name": ["a"]},
        {"name": "ok", "description": "x" * 2001},
        {"name": "ok", "weight": 3},
        {"name": "bad\x00name"},
    ):
        await refused("post", API, 422, "validation_error", json=body)
    await refused("post", API, 409, "topic_name_taken", json={"name": "existing"})
    await refused("patch", f"{API}/{topic['id']}", 422, "validation_error", json={})
    await refused("patch", f"{API}/{topic['id']}", 422, "validation_error", json={"name": None})
    await refused("get", f"{API}/{uuid.uuid4()}", 404, "topic_not_found")
    await refused("get", f"{API}/nope", 422, "validation_error")
    await refused(
        "get",
        f"{API}/{topic['id']}/transcriptions",
        422,
        "validation_error",
        params={"status": "maybe"},
    )
    assign = f"/api/v1/transcriptions/{t}/topics/{topic['id']}"
    await refused("put", assign, 422, "validation_error", json={"status": "suggested"})
    await refused("put", assign, 422, "validation_error", json={"status": "accepted", "x": 1})
    await refused(
        "put", f"/api/v1/transcriptions/{t}/topics/{uuid.uuid4()}", 404, "topic_not_found"
    )
    await refused(
        "put",
        f"/api/v1/transcriptions/{uuid.uuid4()}/topics/{topic['id']}",
        404,
        "transcription_not_found",
    )
    assert await count(Topic) == 1
    assert await count(TranscriptionTopic) == 0
    assert await count(Job) == jobs_before
