"""Exports carry an ETag of what they are rendered from; If-None-Match gets 304; a long
transcript's rendering is kept (bounded) and reused only while its inputs are unchanged
(issue 15: a 30,000-word SRT costs ~100 ms of CPU to lay out)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.conftest import ApiUser
from tests.transcriptions.test_api_limits import seed_transcript
from verbatim.models import Segment, Speaker
from verbatim.services import get_services
from verbatim.transcriptions import export_cache
from verbatim.transcriptions.export import Rendered
from verbatim.transcriptions.service import RENDER_INLINE_SEGMENTS

BIG = RENDER_INLINE_SEGMENTS + 50


def test_the_cache_keeps_the_most_recent_within_its_byte_budget() -> None:
    cache = export_cache.RenderCache(max_bytes=250)
    for name in ("a", "b", "c"):
        cache.put(name, Rendered("x" * 100, "text/plain", f"{name}.txt"))
    assert cache.get("a") is None  # the oldest went to make room
    assert cache.get("b") is not None and cache.get("c") is not None
    cache.get("b")  # used: now the most recent
    cache.put("d", Rendered("y" * 100, "text/plain", "d.txt"))
    assert cache.get("c") is None and cache.get("b") is not None
    cache.put("huge", Rendered("z" * 1000, "text/plain", "huge.txt"))  # larger than the budget
    assert cache.get("huge") is None and cache.get("b") is not None
    off = export_cache.RenderCache(max_bytes=0)
    off.put("a", Rendered("x", "text/plain", "a.txt"))
    assert off.get("a") is None


def test_the_key_changes_with_every_input() -> None:
    from verbatim.transcriptions.export import ExportDocument

    header = ExportDocument(
        id="t1",
        title="meeting.m4a",
        language="en",
        duration=9.0,
        model="base",
        text="",
        segments=(),
    )
    rows = [(0.0, 1.0, "hello there", "SPEAKER_1", 0.9, '[{"start":0,"end":1,"word":"hi"}]')]
    key = export_cache.key_of(header, rows, "srt")
    assert key == export_cache.key_of(header, list(rows), "srt")
    assert key != export_cache.key_of(header, rows, "vtt")
    assert key != export_cache.key_of(ExportDocument(**{**vars(header), "id": "t2"}), rows, "srt")
    assert key != export_cache.key_of(
        ExportDocument(**{**vars(header), "title": "other.m4a"}), rows, "srt"
    )
    for changed in (
        (0.0, 1.0, "hello there!", "SPEAKER_1", 0.9, rows[0][5]),
        (0.0, 1.5, "hello there", "SPEAKER_1", 0.9, rows[0][5]),
        (0.0, 1.0, "hello there", "Ann", 0.9, rows[0][5]),
        (0.0, 1.0, "hello there", "SPEAKER_1", 0.9, '[{"start":0,"end":1,"word":"hey"}]'),
    ):
        assert key != export_cache.key_of(header, [changed], "srt")


@pytest.mark.parametrize("segments", [3, BIG])
async def test_etag_and_not_modified(alice: ApiUser, bob: ApiUser, segments: int) -> None:
    tid = await seed_transcript(alice, segments, words_per_segment=4)
    path = f"/api/v1/transcriptions/{tid}/export?format=srt"
    first = await alice.get(path)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    again = await alice.get(path)
    assert again.content == first.content and again.headers["etag"] == etag

    unchanged = await alice.get(path, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    listed = await alice.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304
    stale = await alice.get(path, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.content == first.content

    # Each format has its own tag.
    vtt = await alice.get(f"/api/v1/transcriptions/{tid}/export?format=vtt")
    assert vtt.headers["etag"] != etag

    # Another user learns nothing, even holding the tag.
    for headers in ({}, {"If-None-Match": etag}):
        theirs = await bob.get(path, headers=headers)
        assert theirs.status_code == 404 and theirs.json()["error"]["code"] == (
            "transcription_not_found"
        )


async def test_an_edit_or_a_rename_is_exported_at_once(alice: ApiUser) -> None:
    tid = await seed_transcript(alice, BIG, words_per_segment=4)
    path = f"/api/v1/transcriptions/{tid}/export?format=srt"
    before = await alice.get(path)
    assert before.status_code == 200
    etag = before.headers["etag"]

    edited = await alice.patch(
        f"/api/v1/transcriptions/{tid}/segments/7", json={"text": "segment seven, rewritten"}
    )
    assert edited.status_code == 200, edited.text
    after = await alice.get(path, headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert "segment seven, rewritten" in after.text and "segment seven" not in before.text
    assert after.headers["etag"] != etag

    # A speaker named after the first export shows with its new name (the rows carry labels,
    # the name comes from the speaker table: the key must cover both).
    async with get_services().sessionmaker() as session:
        segment = await session.scalar(
            select(Segment).where(Segment.transcription_id == uuid.UUID(tid), Segment.index == 3)
        )
        assert segment is not None
        segment.speaker = "SPEAKER_1"
        # Only the rows change here (the transcript text stays): the key must see them.
        session.add(Speaker(transcription_id=uuid.UUID(tid), label="SPEAKER_1"))
        await session.commit()
    labelled = await alice.get(path)
    assert "SPEAKER_1: segment 3" in labelled.text
    renamed = await alice.patch(
        f"/api/v1/transcriptions/{tid}/speakers/SPEAKER_1", json={"display_name": "Ann"}
    )
    assert renamed.status_code == 200, renamed.text
    named = await alice.get(path, headers={"If-None-Match": labelled.headers["etag"]})
    assert named.status_code == 200 and "Ann: segment 3" in named.text
    assert "SPEAKER_1" not in named.text
