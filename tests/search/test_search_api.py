"""GET /api/v1/search: meaning and words, filters, paging, grouping, bad input, isolation.

Chunks are embedded with the real model (tests/search/helpers.py); every query is embedded by
the API process exactly as in production.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import ApiUser, register
from tests.search.helpers import Chunk, Recording, add_recording, search
from verbatim.services import get_services

PLANNING = [
    Chunk(
        "Welcome everyone to the weekly planning meeting. Today we review the schedule for "
        "the new warehouse in the north.",
        0.0,
        29.5,
        "SPEAKER_00",
    ),
    Chunk(
        "After a long discussion we agreed to postpone the shipment to the customer until "
        "March, because the spare parts will arrive late.",
        30.0,
        61.8,
        "SPEAKER_01",
    ),
    Chunk(
        "The budget for the marketing campaign stays the same as last quarter. Nobody asked "
        "for more money.",
        62.0,
        90.0,
        "SPEAKER_00",
    ),
]
COOKING = [
    Chunk(
        "To make tomato soup, cook the onion slowly in olive oil. Add garlic and chopped "
        "tomatoes, then let it simmer for twenty minutes.",
        0.0,
        41.0,
    ),
    Chunk("Serve the soup hot, with fresh bread and butter.", 41.0, 55.0),
]
GERMAN = [
    Chunk(
        "Wir haben die Lieferung auf März verschoben, weil die Ersatzteile zu spät kommen.",
        0.0,
        20.0,
    )
]


async def _library(user: ApiUser) -> dict[str, Recording]:
    return {
        "planning": await add_recording(user, PLANNING, title="Weekly planning"),
        "cooking": await add_recording(user, COOKING, title="Soup"),
        "german": await add_recording(user, GERMAN, language="de", title="Lieferung"),
    }


def _ids(body: dict[str, Any]) -> list[int]:
    return [hit["chunk_id"] for hit in body["items"]]


async def test_meaning_words_and_deep_link(alice: ApiUser) -> None:
    lib = await _library(alice)
    planning = lib["planning"]

    # Meaning: no word of the query is in the passage except "March".
    body = await search(alice, "moving the delivery to March")
    top = body["items"][0]
    assert top["chunk_id"] == planning.chunk_ids[1]
    assert top["transcription_id"] == str(planning.transcription_id)
    assert top["audio_file_id"] == str(planning.audio_file_id)
    assert top["title"] == "Weekly planning"
    assert "semantic" in top["retrievers"]
    assert top["start_time"] == 30.0 and top["end_time"] == 61.8
    assert top["speaker"] == "SPEAKER_01"
    assert top["link"]["media_url"] == (
        f"http://verbatim.test/api/v1/audio/{planning.audio_file_id}/content#t=30"
    )
    assert top["link"]["start_time"] == 30.0
    # The web page that plays it from there, showing this transcript.
    assert top["link"]["page_url"] == (
        f"http://verbatim.test/recordings/{planning.audio_file_id}"
        f"?transcription={planning.transcription_id}&t=30"
    )
    assert top["similarity"] > 0.3
    assert body["mode"] == "hybrid" and body["group_by"] == "chunk"

    # Words: both retrievers agree on the soup passage; the matched words are highlighted.
    body = await search(alice, "tomato soup")
    top = body["items"][0]
    assert top["chunk_id"] == lib["cooking"].chunk_ids[0]
    assert top["retrievers"] == ["semantic", "text"]
    assert top["highlight_kind"] == "words"
    marked = [top["text"][h["start"] : h["end"]] for h in top["highlights"]]
    assert "tomato" in marked and "soup" in marked and "tomatoes" in marked  # stemmed
    assert "<mark>tomato</mark> <mark>soup</mark>" in top["snippet"]


async def test_best_sentence_is_highlighted_for_meaning(alice: ApiUser) -> None:
    lib = await _library(alice)
    body = await search(
        alice, "what did the advertising cost", mode="semantic", highlight="meaning"
    )
    top = body["items"][0]
    assert top["chunk_id"] == lib["planning"].chunk_ids[2]
    assert top["highlight_kind"] == "sentence"
    (span,) = top["highlights"]
    assert top["text"][span["start"] : span["end"]] == (
        "The budget for the marketing campaign stays the same as last quarter."
    )
    assert top["snippet"].startswith("<mark>The budget")
    # By default no sentence is embedded: a hit found by meaning alone has no highlight.
    body = await search(alice, "what did the advertising cost", mode="semantic")
    assert body["items"][0]["chunk_id"] == top["chunk_id"]
    assert body["items"][0]["highlight_kind"] == "none"
    assert body["items"][0]["highlights"] == []


async def test_text_mode_phrases_exclusions_and_languages(alice: ApiUser) -> None:
    lib = await _library(alice)
    cooking = lib["cooking"]
    # A quoted phrase must appear as written (both chunks say "soup").
    assert _ids(await search(alice, '"tomato soup"', mode="text")) == [cooking.chunk_ids[0]]
    # -word excludes.
    assert _ids(await search(alice, "soup -tomato", mode="text")) == [cooking.chunk_ids[1]]
    # Every hit of text mode was found by words only.
    body = await search(alice, "soup", mode="text")
    assert {h["chunk_id"] for h in body["items"]} == set(cooking.chunk_ids)
    assert all(h["retrievers"] == ["text"] and h["similarity"] is None for h in body["items"])
    # English stemming: "postponed" finds "postpone".
    assert _ids(await search(alice, "postponed", mode="text")) == [lib["planning"].chunk_ids[1]]
    # German stemming for a German transcription: "Lieferungen" finds "Lieferung".
    body = await search(alice, "Lieferungen", mode="text")
    assert _ids(body) == [lib["german"].chunk_ids[0]]
    assert body["items"][0]["language"] == "de"
    # A word nobody said.
    assert (await search(alice, "zeppelin", mode="text"))["items"] == []


async def test_group_by_transcription_and_cursor(alice: ApiUser) -> None:
    lib = await _library(alice)
    body = await search(alice, "meeting soup budget shipment", group_by="transcription")
    seen = [h["transcription_id"] for h in body["items"]]
    assert len(seen) == len(set(seen))  # one hit per recording
    by_id = {h["transcription_id"]: h for h in body["items"]}
    planning = by_id[str(lib["planning"].transcription_id)]
    assert planning["hits_in_transcription"] == 3  # every planning chunk was a candidate
    assert body["group_by"] == "transcription"

    everything = _ids(await search(alice, "meeting", mode="semantic", limit=100))
    assert len(everything) == 6
    pages: list[int] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"mode": "semantic", "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = await search(alice, "meeting", **params)
        pages += _ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == everything  # same order, no gap, no repeat


@pytest.mark.slow
async def test_filters(alice: ApiUser) -> None:
    lib = await _library(alice)
    planning, cooking, german = lib["planning"], lib["cooking"], lib["german"]
    q = "meeting soup shipment Lieferung"

    def transcriptions(body: dict[str, Any]) -> set[str]:
        return {h["transcription_id"] for h in body["items"]}

    body = await search(alice, q, audio_file_id=str(cooking.audio_file_id))
    assert transcriptions(body) == {str(cooking.transcription_id)}
    body = await search(alice, q, language="de")
    assert transcriptions(body) == {str(german.transcription_id)}
    body = await search(alice, q, speaker="speaker_01")  # any case
    assert _ids(body) == [planning.chunk_ids[1]]
    body = await search(alice, q, source_type="download")
    assert body["items"] == []
    body = await search(alice, q, source_type="upload", limit=100)
    assert len(transcriptions(body)) == 3
    today = datetime.now(UTC).date()
    assert (await search(alice, q, **{"from": str(today + timedelta(days=1))}))["items"] == []
    assert (await search(alice, q, to=str(today - timedelta(days=1))))["items"] == []
    body = await search(alice, q, **{"from": str(today), "to": str(today)}, limit=100)
    assert len(transcriptions(body)) == 3
    body = await search(alice, q, min_duration=60)
    assert transcriptions(body) == {str(planning.transcription_id)}

    # Collections and topics (the library's own endpoints put transcriptions in them).
    r = await alice.post("/api/v1/collections", json={"name": "Kitchen"})
    assert r.status_code == 201, r.text
    collection = r.json()["id"]
    r = await alice.post(
        f"/api/v1/collections/{collection}/items",
        json={"transcription_id": str(cooking.transcription_id)},
    )
    assert r.status_code == 201, r.text
    body = await search(alice, q, collection_id=collection, limit=100)
    assert transcriptions(body) == {str(cooking.transcription_id)}

    r = await alice.post("/api/v1/topics", json={"name": "Logistics"})
    assert r.status_code == 201, r.text
    topic = r.json()["id"]
    body = await search(alice, q, topic_id=topic)
    assert body["items"] == []  # nothing assigned yet
    r = await alice.client.put(
        f"/api/v1/transcriptions/{planning.transcription_id}/topics/{topic}",
        headers=alice.headers,
        json={"status": "accepted"},
    )
    assert r.status_code == 200, r.text
    body = await search(alice, q, topic_id=topic, limit=100)
    assert transcriptions(body) == {str(planning.transcription_id)}
    r = await alice.client.put(
        f"/api/v1/transcriptions/{planning.transcription_id}/topics/{topic}",
        headers=alice.headers,
        json={"status": "rejected"},
    )
    assert r.status_code == 200, r.text
    assert (await search(alice, q, topic_id=topic))["items"] == []


MODES = ("hybrid", "semantic", "text")


@pytest.mark.slow
async def test_another_users_chunks_never_appear(app_client: Any) -> None:
    alice = await register(app_client, "alice@example.com")
    bob = await register(app_client, "bob@example.com")
    # Both say the same things: any leak would show.
    mine = await _library(alice)
    theirs = await _library(bob)
    bob_collection = (await bob.post("/api/v1/collections", json={"name": "B"})).json()["id"]
    await bob.post(
        f"/api/v1/collections/{bob_collection}/items",
        json={"transcription_id": str(theirs["cooking"].transcription_id)},
    )
    bob_topic = (await bob.post("/api/v1/topics", json={"name": "B"})).json()["id"]
    alice_collection = (await alice.post("/api/v1/collections", json={"name": "A"})).json()["id"]
    await alice.post(
        f"/api/v1/collections/{alice_collection}/items",
        json={"transcription_id": str(mine["cooking"].transcription_id)},
    )
    mine_ids = {str(r.transcription_id) for r in mine.values()}
    mine_audio = {str(r.audio_file_id) for r in mine.values()}
    today = str(datetime.now(UTC).date())
    filters: list[dict[str, Any]] = [
        {},
        {"audio_file_id": str(mine["cooking"].audio_file_id)},
        {"collection_id": alice_collection},
        {"language": "en"},
        {"speaker": "SPEAKER_01"},
        {"source_type": "upload"},
        {"from": today, "to": today},
        {"min_duration": 1},
        {"group_by": "transcription"},
    ]
    queries = ("moving the delivery to March", "soup", "Lieferung")
    for mode, params, q in itertools.product(MODES, filters, queries):
        body = await search(alice, q, mode=mode, limit=100, **params)
        for hit in body["items"]:
            assert hit["transcription_id"] in mine_ids, (mode, params, q)
            assert hit["audio_file_id"] in mine_audio
        if mode == "hybrid" and not params and q == "soup":
            assert body["items"], "the test data must match"

    # Another user's filter ids are unknown ids: 404 with a code, in every mode.
    for mode in MODES:
        for name, value, code in (
            ("audio_file_id", str(theirs["cooking"].audio_file_id), "audio_not_found"),
            ("collection_id", bob_collection, "collection_not_found"),
            ("topic_id", bob_topic, "topic_not_found"),
            ("audio_file_id", str(uuid.uuid4()), "audio_not_found"),
            ("collection_id", str(uuid.uuid4()), "collection_not_found"),
            ("topic_id", str(uuid.uuid4()), "topic_not_found"),
        ):
            r = await alice.get("/api/v1/search", params={"q": "soup", "mode": mode, name: value})
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == code


async def test_bad_input(alice: ApiUser, app_client: Any) -> None:
    await add_recording(alice, COOKING)

    async def error(params: dict[str, Any], status: int = 422) -> str:
        r = await alice.get("/api/v1/search", params=params)
        assert r.status_code == status, r.text
        code: str = r.json()["error"]["code"]
        return code

    assert await error({"q": ""}) == "query_empty"
    assert await error({"q": "   \t "}) == "query_empty"
    assert await error({"q": "x" * 1001}) == "query_too_long"
    assert (await search(alice, "soup " * 200))["items"]  # exactly 1,000 characters is fine
    assert await error({}) == "validation_error"  # no q
    assert await error({"q": "soup", "mode": "fuzzy"}) == "validation_error"
    assert await error({"q": "soup", "limit": 0}) == "validation_error"
    assert await error({"q": "soup", "limit": 101}) == "validation_error"
    assert await error({"q": "soup", "language": "english"}) == "validation_error"
    assert await error({"q": "soup", "min_duration": -1}) == "validation_error"
    assert await error({"q": "soup", "from": "yesterday"}) == "validation_error"
    assert await error({"q": "soup", "group_by": "speaker"}) == "validation_error"
    assert await error({"q": "soup", "collection_id": "nope"}) == "validation_error"
    assert await error({"q": "soup", "from": "2026-02-01", "to": "2026-01-01"}) == (
        "invalid_date_range"
    )
    assert await error({"q": "soup", "cursor": "garbage!"}) == "invalid_cursor"
    assert await error({"q": "soup\x00"}) in ("invalid_input", "validation_error")
    # A cursor of one search is refused by another.
    page = await search(alice, "soup", mode="semantic", limit=1)
    assert page["next_cursor"]
    assert (
        await error({"q": "bread", "mode": "semantic", "limit": 1, "cursor": page["next_cursor"]})
        == "invalid_cursor"
    )
    assert (
        await error({"q": "soup", "mode": "text", "limit": 1, "cursor": page["next_cursor"]})
        == "invalid_cursor"
    )
    # Not logged in.
    r = await app_client.get("/api/v1/search", params={"q": "soup"})
    assert r.status_code == 401


@pytest.mark.parametrize("mode", MODES)
async def test_nothing_when_library_is_empty(alice: ApiUser, mode: str) -> None:
    body = await search(alice, "anything at all", mode=mode)
    assert body["items"] == [] and body["next_cursor"] is None


async def test_hits_carry_the_renamed_speaker_and_filter_by_name(alice: ApiUser) -> None:
    """A speaker renamed through the API shows by name in hits, and the filter takes the name."""
    planning = await add_recording(alice, PLANNING, title="Weekly planning")
    async with get_services().sessionmaker() as session:
        await session.execute(
            text(
                "INSERT INTO speaker (transcription_id, label, talk_time, word_count)"
                " VALUES (:t, 'SPEAKER_00', 57.3, 40), (:t, 'SPEAKER_01', 31.8, 22)"
            ),
            {"t": planning.transcription_id},
        )
        await session.commit()
    r = await alice.patch(
        f"/api/v1/transcriptions/{planning.transcription_id}/speakers/SPEAKER_01",
        json={"display_name": "Alice Moreau"},
    )
    assert r.status_code == 200, r.text

    top = (await search(alice, "moving the delivery to March"))["items"][0]
    assert top["chunk_id"] == planning.chunk_ids[1]
    assert top["speaker"] == "SPEAKER_01" and top["speaker_name"] == "Alice Moreau"
    others = [h for h in (await search(alice, "budget"))["items"] if h["speaker"] == "SPEAKER_00"]
    assert others and all(h["speaker_name"] is None for h in others)

    body = await search(alice, "meeting shipment budget", speaker="alice moreau")
    assert _ids(body) == [planning.chunk_ids[1]]
    body = await search(alice, "meeting shipment budget", speaker="SPEAKER_01")
    assert _ids(body) == [planning.chunk_ids[1]]
