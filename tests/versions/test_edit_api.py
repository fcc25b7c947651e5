"""Editing a transcript through the API: text, speaker, split and merge keep word timings;
each edit is a version; exports and search follow; other users get 404; bad input is a 4xx with
a stable code and stores nothing. Transcripts are written straight to the database."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from tests.conftest import FIXTURES, ApiUser
from verbatim.models import (
    Job,
    JobType,
    Mode,
    Segment,
    Speaker,
    Transcription,
    TranscriptionStatus,
    TranscriptionVersion,
)
from verbatim.services import get_services

TURNS = [
    ("SPEAKER_1", "we agreed to move the delivery to March"),
    ("SPEAKER_2", "that works for the warehouse team"),
    ("SPEAKER_1", "good then it is settled"),
]


async def seed_dialogue(
    user: ApiUser, status: TranscriptionStatus = TranscriptionStatus.completed
) -> str:
    audio = (await user.upload(FIXTURES / "speech.wav")).json()
    me = (await user.get("/api/v1/auth/me")).json()
    tid = uuid.uuid4()
    async with get_services().sessionmaker() as session:
        session.add(
            Transcription(
                id=tid,
                user_id=me["id"],
                tenant_id=me["tenant_id"],
                audio_file_id=audio["id"],
                status=status,
                language="en",
                engine="faster-whisper",
                model_name="tiny.en",
                mode=Mode.dialogue,
                options={},
                text=" ".join(t for _, t in TURNS),
                duration=30.0,
            )
        )
        await session.flush()
        t = 0.0
        for i, (speaker, text) in enumerate(TURNS):
            words = []
            for token in text.split():
                words.append(
                    {
                        "start": round(t, 3),
                        "end": round(t + 0.3, 3),
                        "word": " " + token,
                        "probability": 0.8,
                    }
                )
                t += 0.5
            session.add(
                Segment(
                    transcription_id=tid,
                    index=i,
                    start=words[0]["start"],
                    end=words[-1]["end"],
                    text=text,
                    speaker=speaker,
                    words=words,
                )
            )
            t += 1.0
        for label in ("SPEAKER_1", "SPEAKER_2"):
            session.add(Speaker(transcription_id=tid, label=label, talk_time=5.0, word_count=8))
        await session.commit()
    return str(tid)


async def segments(user: ApiUser, tid: str) -> list[dict[str, Any]]:
    r = await user.get(f"/api/v1/transcriptions/{tid}/segments", params={"limit": 100})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def stored_versions(tid: str) -> int:
    async with get_services().sessionmaker() as session:
        n = await session.scalar(
            select(func.count()).where(TranscriptionVersion.transcription_id == uuid.UUID(tid))
        )
    return int(n or 0)


async def test_editing_a_word_keeps_its_neighbours_times(alice: ApiUser) -> None:
    tid = await seed_dialogue(alice)
    before = (await segments(alice, tid))[0]["words"]

    r = await alice.patch(
        f"/api/v1/transcriptions/{tid}/segments/0",
        json={"text": "we agreed to move the shipment to March", "base_version": None},
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 2  # 1 is the original, kept
    after = (await segments(alice, tid))[0]["words"]
    assert [w["word"].strip() for w in after][5] == "shipment"
    for i in (0, 1, 2, 3, 4, 6, 7):
        assert (after[i]["start"], after[i]["end"]) == (before[i]["start"], before[i]["end"])
    assert before[4]["end"] <= after[5]["start"] <= after[5]["end"] <= before[6]["start"]

    srt = (await alice.get(f"/api/v1/transcriptions/{tid}/export", params={"format": "srt"})).text
    assert "shipment" in srt and "delivery" not in srt
    t = (await alice.get(f"/api/v1/transcriptions/{tid}", params={"segments_limit": 0})).json()
    assert "shipment" in t["text"]

    versions = (await alice.get(f"/api/v1/transcriptions/{tid}/versions")).json()
    assert versions["current"] == 2
    assert [(v["version"], v["kind"]) for v in versions["items"]] == [(2, "edit"), (1, "engine")]
    diff = (await alice.get(f"/api/v1/transcriptions/{tid}/versions/diff?from=1&to=2")).json()
    # Each run carries its times: the older version's words, the newer one's for an insert.
    assert diff["changes"][0]["words"] == [
        {"op": "equal", "text": "we agreed to move the", "start": 0.0, "end": before[4]["end"]},
        {"op": "delete", "text": "delivery", "start": before[5]["start"], "end": before[5]["end"]},
        {"op": "insert", "text": "shipment", "start": after[5]["start"], "end": after[5]["end"]},
        {"op": "equal", "text": "to March", "start": before[6]["start"], "end": before[7]["end"]},
    ]
    assert diff["changes"][0]["from_start"] == before[0]["start"]
    assert diff["changes"][0]["to_end"] == after[-1]["end"]
    async with get_services().sessionmaker() as session:
        queued = await session.scalar(
            select(func.count()).where(
                Job.transcription_id == uuid.UUID(tid), Job.type == JobType.search_index
            )
        )
    assert queued == 1


async def test_change_speaker_split_and_merge_keep_every_word_time(alice: ApiUser) -> None:
    tid = await seed_dialogue(alice)
    original = await segments(alice, tid)
    all_times = [(w["start"], w["end"]) for s in original for w in s["words"]]

    r = await alice.patch(f"/api/v1/transcriptions/{tid}/segments/1", json={"speaker": "SPEAKER_1"})
    assert r.status_code == 200, r.text
    assert r.json()["segments"][0]["speaker"] == "SPEAKER_1"

    r = await alice.post(f"/api/v1/transcriptions/{tid}/segments/0/split", json={"word_index": 3})
    assert r.status_code == 200, r.text
    now = await segments(alice, tid)
    assert [s["text"] for s in now[:2]] == ["we agreed to", "move the delivery to March"]
    assert len(now) == 4 and [s["index"] for s in now] == [0, 1, 2, 3]
    assert now[1]["start"] == original[0]["words"][3]["start"]

    r = await alice.post(f"/api/v1/transcriptions/{tid}/segments/2/merge", json={})
    assert r.status_code == 200, r.text
    now = await segments(alice, tid)
    assert len(now) == 3
    assert now[2]["text"] == "that works for the warehouse team good then it is settled"
    assert [(w["start"], w["end"]) for s in now for w in s["words"]] == all_times
    speakers = (await alice.get(f"/api/v1/transcriptions/{tid}/speakers")).json()["items"]
    assert {s["label"]: s["word_count"] for s in speakers} == {"SPEAKER_1": 14, "SPEAKER_2": 2}
    versions = (await alice.get(f"/api/v1/transcriptions/{tid}/versions")).json()
    assert versions["current"] == 4


async def test_another_user_gets_404_and_changes_nothing(alice: ApiUser, bob: ApiUser) -> None:
    tid = await seed_dialogue(alice)
    base = f"/api/v1/transcriptions/{tid}"
    answers = [
        await bob.patch(f"{base}/segments/0", json={"text": "hijacked"}),
        await bob.post(f"{base}/segments/0/split", json={"word_index": 1}),
        await bob.post(f"{base}/segments/0/merge", json={}),
        await bob.get(f"{base}/versions"),
        await bob.get(f"{base}/versions/diff?from=1&to=2"),
    ]
    for r in answers:
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "transcription_not_found"
    assert await stored_versions(tid) == 0
    assert (await segments(alice, tid))[0]["text"] == TURNS[0][1]


async def test_bad_edits_are_4xx_with_codes_and_store_nothing(alice: ApiUser) -> None:
    tid = await seed_dialogue(alice)
    base = f"/api/v1/transcriptions/{tid}"
    cases = [
        (await alice.patch(f"{base}/segments/0", json={}), 422, "nothing_to_change"),
        (await alice.patch(f"{base}/segments/0", json={"text": "   "}), 422, "empty_text"),
        (
            await alice.patch(f"{base}/segments/0", json={"speaker": "SPEAKER_9"}),
            422,
            "unknown_speaker",
        ),
        (
            await alice.patch(f"{base}/segments/0", json={"text": "x", "extra": 1}),
            422,
            "validation_error",
        ),
        (await alice.patch(f"{base}/segments/0", json={"text": 5}), 422, "validation_error"),
        (await alice.patch(f"{base}/segments/0", json={"text": "a\x00b"}), 422, "validation_error"),
        (await alice.patch(f"{base}/segments/99", json={"text": "x"}), 404, "segment_not_found"),
        (await alice.patch(f"{base}/segments/-1", json={"text": "x"}), 422, "validation_error"),
        (
            await alice.post(f"{base}/segments/0/split", json={"word_index": 8}),
            422,
            "split_out_of_range",
        ),
        (
            await alice.post(f"{base}/segments/0/split", json={"word_index": 0}),
            422,
            "validation_error",
        ),
        (await alice.post(f"{base}/segments/2/merge", json={}), 422, "no_next_segment"),
        (await alice.get(f"{base}/versions/diff?from=1&to=2"), 404, "version_not_found"),
        (await alice.get(f"{base}/versions/diff?from=0&to=2"), 422, "validation_error"),
        (
            await alice.patch(
                f"/api/v1/transcriptions/{uuid.uuid4()}/segments/0", json={"text": "x"}
            ),
            404,
            "transcription_not_found",
        ),
    ]
    for r, status, code in cases:
        assert r.status_code == status, (code, r.text)
        assert r.json()["error"]["code"] == code, r.text
    # A failed edit rolls back with its request: not even the baseline version stays.
    assert await stored_versions(tid) == 0
    assert [s["text"] for s in await segments(alice, tid)] == [t for _, t in TURNS]


async def test_a_stale_base_version_is_a_conflict(alice: ApiUser) -> None:
    tid = await seed_dialogue(alice)
    base = f"/api/v1/transcriptions/{tid}/segments/0"
    first = await alice.patch(base, json={"text": "we agreed", "base_version": 1})
    assert first.status_code == 200, first.text

    stale = await alice.patch(base, json={"text": "we did not agree", "base_version": 1})

    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "version_conflict"
    assert stale.json()["error"]["details"] == {"current_version": 2}
    assert (await segments(alice, tid))[0]["text"] == "we agreed"
    assert await stored_versions(tid) == 2


async def test_an_unfinished_transcription_cannot_be_edited(alice: ApiUser) -> None:
    tid = await seed_dialogue(alice, TranscriptionStatus.running)

    r = await alice.patch(f"/api/v1/transcriptions/{tid}/segments/0", json={"text": "x"})

    assert r.status_code == 409
    assert r.json()["error"]["code"] == "transcription_not_ready"
    assert await stored_versions(tid) == 0


async def test_editing_a_3_hour_transcript(alice: ApiUser) -> None:
    """One edit of a 30,000-word transcript: every other turn untouched, two snapshots written
    (the original and the edit). The time is printed for the notes (`-s`)."""
    import time

    from tests.transcriptions.test_api_limits import seed_transcript

    tid = await seed_transcript(alice, segments=3000, words_per_segment=10)
    before = await alice.get(
        f"/api/v1/transcriptions/{tid}/segments", params={"limit": 3, "offset": 1500}
    )

    started = time.perf_counter()
    r = await alice.patch(
        f"/api/v1/transcriptions/{tid}/segments/1500",
        json={"text": "w0 changed w2 w3 w4 w5 w6 w7 w8 w9"},
    )
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = await alice.patch(
        f"/api/v1/transcriptions/{tid}/segments/1501", json={"text": "w0 w1 edited"}
    )
    second = time.perf_counter() - started
    print(
        f"\nedit of a 30,000-word transcript: first {first:.2f} s "
        f"(with the original's snapshot), next {second:.2f} s"
    )

    assert r.status_code == 200 and again.status_code == 200, (r.text, again.text)
    after = await alice.get(
        f"/api/v1/transcriptions/{tid}/segments", params={"limit": 3, "offset": 1500}
    )
    old, new = before.json()["items"], after.json()["items"]
    assert [w["start"] for w in new[0]["words"]] == [w["start"] for w in old[0]["words"]]
    assert new[2] == old[2]
    assert await stored_versions(tid) == 3
