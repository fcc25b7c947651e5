"""Topic suggestions on real transcripts: the real speech model transcribes, the real embedding
model indexes (search.index) and scores (topics.score); suggestions carry reasons that quote
the passages with their timestamps; rejections are remembered."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from verbatim.library.topics.scoring import TopicText, clock, quote, reasoning

API = "/api/v1/topics"


async def settle(user: ApiUser, timeout: float = 120) -> list[dict[str, Any]]:
    """Wait until none of the user's jobs is pending or running; their jobs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = await user.get("/api/v1/jobs", params={"limit": 500})
        jobs: list[dict[str, Any]] = r.json()["items"]
        if all(j["status"] in ("completed", "failed", "cancelled") for j in jobs):
            return jobs
        await asyncio.sleep(0.25)
    raise AssertionError(f"jobs still running: {jobs}")


async def transcribe(user: ApiUser, fixture: str) -> str:
    audio = (await user.upload(FIXTURES / fixture)).json()
    r = await user.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
    assert r.status_code == 202, r.text
    job = await wait_for_job(user, r.json()["job_id"])
    assert job["status"] == "completed", job
    return str(r.json()["transcription_id"])


async def topics_of(
    user: ApiUser, tid: str, status: str | None = None
) -> dict[str, dict[str, Any]]:
    params = {"status": status} if status else {}
    r = await user.get(f"/api/v1/transcriptions/{tid}/topics", params=params)
    assert r.status_code == 200, r.text
    return {a["topic_name"]: a for a in r.json()["items"]}


@pytest.mark.slow
async def test_suggestions_with_reasons_review_and_rescoring(alice: ApiUser, bob: ApiUser) -> None:
    for name, description in (
        ("Meetings", "Meeting notes, agendas, starting a meeting"),
        ("Animals", "Foxes, dogs, pets and wild animals"),
        ("Cooking", "Recipes, baking bread, kitchen ingredients"),
    ):
        r = await alice.post(API, json={"name": name, "description": description})
        assert r.status_code == 201, r.text
    topic_ids = {t["name"]: t["id"] for t in (await alice.get(API)).json()["items"]}
    await settle(alice)  # scoring jobs over no transcriptions: nothing to do

    dialogue = await transcribe(alice, "dialogue.wav")
    speech = await transcribe(alice, "speech.wav")
    jobs = await settle(alice)
    assert {j["type"] for j in jobs} >= {"transcription", "search_index", "topic_scoring"}
    assert all(j["status"] == "completed" for j in jobs), jobs

    found = await topics_of(alice, dialogue)
    assert list(found) == ["Meetings"], found
    meetings = found["Meetings"]
    assert meetings["status"] == "suggested" and meetings["assigned_by"] == "ai"
    assert meetings["user_reviewed"] is False
    assert 0.35 <= meetings["ai_confidence"] <= 1
    # The reason quotes the passage, with its timestamps, so it can be checked in one click.
    passage = meetings["passages"][0]
    assert "meeting notes" in passage["text"].lower()
    assert passage["similarity"] == meetings["ai_confidence"]
    assert 0 <= passage["start_time"] < passage["end_time"] <= 9
    assert "meeting notes" in meetings["ai_reasoning"].lower()
    assert (
        f"[{clock(passage['start_time'])}-{clock(passage['end_time'])}]" in meetings["ai_reasoning"]
    )
    assert list(await topics_of(alice, speech)) == ["Animals"]
    r = await alice.get(f"{API}/{topic_ids['Cooking']}/transcriptions")
    assert r.json()["total"] == 0
    counts = {t["name"]: t["counts"] for t in (await alice.get(API)).json()["items"]}
    assert counts["Meetings"] == {"suggested": 1, "accepted": 0, "rejected": 0}

    # Reject; change the topic's text (re-scored in the background): never suggested again.
    r = await alice.put(
        f"/api/v1/transcriptions/{dialogue}/topics/{topic_ids['Meetings']}",
        json={"status": "rejected"},
    )
    assert r.status_code == 200
    r = await alice.patch(
        f"{API}/{topic_ids['Meetings']}",
        json={"description": "Meeting notes, printed notes, beginning a meeting in the morning"},
    )
    assert r.json()["scoring_job_id"]
    # Animals no longer describes the fox: its suggestion goes.
    r = await alice.patch(f"{API}/{topic_ids['Animals']}", json={"description": "Car engines"})
    assert r.status_code == 200
    # A new topic scores the existing transcriptions.
    r = await alice.post(API, json={"name": "Pets", "description": "A lazy dog and a fox"})
    assert r.status_code == 201
    jobs = await settle(alice)
    assert all(j["status"] == "completed" for j in jobs), jobs
    found = await topics_of(alice, dialogue, "rejected")
    assert found["Meetings"]["status"] == "rejected"
    assert await topics_of(alice, dialogue) == {}
    assert list(await topics_of(alice, speech)) == ["Pets"]

    # Bob's identical topic never sees Alice's transcripts.
    r = await bob.post(API, json={"name": "Pets", "description": "A lazy dog and a fox"})
    bob_topic = r.json()["id"]
    jobs = await settle(bob)
    assert [j["status"] for j in jobs] == ["completed"]
    r = await bob.get(f"{API}/{bob_topic}/transcriptions")
    assert r.json()["total"] == 0


def test_quote_centres_on_the_sentence_sharing_words_with_the_topic() -> None:
    filler = "We went over the usual numbers for the quarter. " * 6
    passage = f"{filler}Then we agreed to move the delivery to March. {filler}"
    quoted = quote(passage, "Delivery schedule. Moving a delivery to another month", 120)
    assert "move the delivery to March." in quoted
    assert quoted.startswith("…") and quoted.endswith("…")
    assert len(quoted) <= 122
    assert quote("Short one.", "anything") == "Short one."


def test_reasoning_quotes_passages_above_the_threshold_with_times() -> None:
    topic = TopicText(id=None, version=1, name="Delivery", description=None)  # type: ignore[arg-type]
    passages = [
        {"start_time": 65.2, "end_time": 92.0, "text": "move it to March", "similarity": 0.61},
        {"start_time": 3700.0, "end_time": 3725.5, "text": "trucks are late", "similarity": 0.4},
        {"start_time": 10.0, "end_time": 20.0, "text": "hello", "similarity": 0.1},
    ]
    text = reasoning(topic, passages, 0.35)
    assert text.startswith('2 passages match the topic "Delivery": ')
    assert '[01:05-01:32] "move it to March" (similarity 0.61)' in text
    assert '[1:01:40-1:02:05] "trucks are late"' in text
    assert "hello" not in text
    assert re.search(r"similarity 0\.40", text)
