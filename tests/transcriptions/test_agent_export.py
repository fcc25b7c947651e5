"""The agent JSON and TSV exports: shape, schema, dialogue turns, topics, API and isolation."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime

import jsonschema
from sqlalchemy import text

from tests.conftest import FIXTURES, ApiUser
from verbatim.models import AudioFile, Segment, Transcription, TranscriptionStatus
from verbatim.services import get_services
from verbatim.transcriptions import agent
from verbatim.transcriptions.export import (
    ExportDocument,
    ExportSegment,
    ExportSpeaker,
    render,
)


def doc(*segments: ExportSegment, **extra: object) -> ExportDocument:
    return ExportDocument(
        id="6f1c2a9e-0000-4000-8000-000000000001",
        title="meeting.mp3",
        language="en",
        duration=max((s.end for s in segments), default=0.0),
        model="tiny.en",
        text=" ".join(s.text.strip() for s in segments),
        segments=segments,
        **extra,  # type: ignore[arg-type]
    )


def validate(payload: dict[str, object]) -> None:
    jsonschema.Draft202012Validator.check_schema(agent.json_schema())
    jsonschema.Draft202012Validator(agent.json_schema()).validate(payload)


def test_dialogue_becomes_turns_with_named_speakers_and_shares() -> None:
    d = doc(
        ExportSegment(0.0, 2.0, " Shall we start?", "Alice"),
        ExportSegment(2.1, 4.04, " Yes,", "Alice"),
        ExportSegment(4.5, 7.0, " the numbers are in.", "Bob"),
        ExportSegment(7.2, 9.0, " Good.", "Alice"),
        speakers=(
            ExportSpeaker("SPEAKER_1", "Alice", 6.0, 4),
            ExportSpeaker("SPEAKER_2", "Bob", 2.0, 4),
        ),
        confidence=0.91234,
        topics=(("Budget", "accepted"), ("Hiring", "suggested")),
    )
    payload = json.loads(render(d, "agent").content)
    validate(payload)
    assert payload["schema_version"] == 1
    assert payload["turns"] == [
        {"speaker": "Alice", "start": 0.0, "end": 4.0, "text": "Shall we start? Yes,"},
        {"speaker": "Bob", "start": 4.5, "end": 7.0, "text": "the numbers are in."},
        {"speaker": "Alice", "start": 7.2, "end": 9.0, "text": "Good."},
    ]
    assert payload["speakers"][0] == {
        "id": "SPEAKER_1",
        "name": "Alice",
        "talk_time": 6.0,
        "share": 0.75,
    }
    assert payload["confidence"] == 0.912
    assert payload["topics"] == [
        {"name": "Budget", "status": "accepted"},
        {"name": "Hiring", "status": "suggested"},
    ]
    assert "words" not in json.dumps(payload)


def test_mono_becomes_paragraphs_split_at_pauses_and_length() -> None:
    segments = [ExportSegment(i * 5.0, i * 5.0 + 4.8, f" Sentence {i}.") for i in range(30)]
    segments.append(ExportSegment(160.0, 162.0, " After a long pause."))
    payload = agent.build(doc(*segments))
    validate(payload)
    starts = [t["start"] for t in payload["turns"]]
    # Pauses of 0.2 s join; a paragraph stops before 60 s; the 10 s pause starts a new one.
    assert starts == [0.0, 60.0, 120.0, 160.0]
    assert all(t["end"] - t["start"] <= 60.0 for t in payload["turns"])
    assert payload["turns"][0]["text"].startswith("Sentence 0. Sentence 1.")
    assert payload["speakers"] == [] and payload["turns"][0]["speaker"] is None


def test_empty_and_odd_values_still_match_the_schema() -> None:
    payload = agent.build(
        doc(ExportSegment(0.0, 1.0, "   "), ExportSegment(1.0, float("nan"), " x"))
    )
    validate(payload)
    assert payload["turns"] == [{"speaker": None, "start": 1.0, "end": None, "text": "x"}]


def test_tsv_has_four_fields_per_row_in_milliseconds() -> None:
    d = doc(
        ExportSegment(0.0, 1.2344, " Tab\there", "SPEAKER_1"),
        ExportSegment(1.5, 3.0, " Two\nlines", None),
    )
    rendered = render(d, "tsv")
    assert rendered.media_type.startswith("text/tab-separated-values")
    assert rendered.filename == "meeting.tsv"
    rows = list(csv.reader(io.StringIO(str(rendered.content)), delimiter="\t"))
    assert rows == [
        ["start", "end", "speaker", "text"],
        ["0", "1234", "SPEAKER_1", "Tab here"],
        ["1500", "3000", "", "Two lines"],
    ]


async def _completed(user: ApiUser) -> uuid.UUID:
    r = await user.upload(FIXTURES / "speech.mp3", filename="Standup.mp3")
    assert r.status_code == 201, r.text
    async with get_services().sessionmaker() as session:
        audio = await session.get(AudioFile, uuid.UUID(r.json()["id"]))
        assert audio is not None
        t = Transcription(
            user_id=audio.user_id,
            tenant_id=audio.tenant_id,
            audio_file_id=audio.id,
            status=TranscriptionStatus.completed,
            engine="faster-whisper",
            model_name="tiny.en",
            language="en",
            text="Hello there. General Kenobi.",
            avg_confidence=0.8,
            completed_at=datetime.now(UTC),
        )
        session.add(t)
        await session.flush()
        for index, (start, end, line) in enumerate(
            [(0.0, 1.5, "Hello there."), (1.6, 3.0, "General Kenobi.")]
        ):
            session.add(
                Segment(
                    transcription_id=t.id, index=index, start=start, end=end, text=line, words=[]
                )
            )
        await session.commit()
        return t.id


async def test_agent_endpoint_export_formats_schema_and_isolation(
    alice: ApiUser, bob: ApiUser
) -> None:
    tid = await _completed(alice)
    r = await alice.post("/api/v1/topics", json={"name": "Star Wars"})
    assert r.status_code == 201, r.text
    r = await alice.put(f"/api/v1/transcriptions/{tid}/topics/{r.json()['id']}")
    assert r.status_code in (200, 201, 204), r.text

    r = await alice.get(f"/api/v1/transcriptions/{tid}/agent")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert 'filename="Standup.agent.json"' in r.headers["content-disposition"]
    payload = r.json()
    schema = (await alice.get("/api/v1/schemas/agent-transcript.json")).json()
    jsonschema.Draft202012Validator(schema).validate(payload)
    assert payload["id"] == str(tid) and payload["title"] == "Standup.mp3"
    assert payload["turns"] == [
        {"speaker": None, "start": 0.0, "end": 3.0, "text": "Hello there. General Kenobi."}
    ]
    assert payload["topics"] == [{"name": "Star Wars", "status": "accepted"}]
    assert payload["confidence"] == 0.8
    same = await alice.get(f"/api/v1/transcriptions/{tid}/export", params={"format": "AGENT"})
    assert same.json() == payload
    tsv = await alice.get(f"/api/v1/transcriptions/{tid}/export", params={"format": "tsv"})
    assert tsv.status_code == 200 and tsv.text.splitlines()[1] == "0\t1500\t\tHello there."
    link = await alice.get(f"/api/v1/transcriptions/{tid}/agent", params={"presigned": "true"})
    assert link.status_code == 200 and link.json()["filename"] == "Standup.agent.json"

    # Another user: 404 for the agent view, its export and its link; nothing is rendered.
    for url, params in (
        (f"/api/v1/transcriptions/{tid}/agent", {}),
        (f"/api/v1/transcriptions/{tid}/agent", {"presigned": "true"}),
        (f"/api/v1/transcriptions/{tid}/export", {"format": "agent"}),
    ):
        r = await bob.get(url, params=params)
        assert r.status_code == 404 and r.json()["error"]["code"] == "transcription_not_found"
    r = await alice.get(f"/api/v1/transcriptions/{uuid.uuid4()}/agent")
    assert r.status_code == 404
    r = await alice.get("/api/v1/transcriptions/not-a-uuid/agent")
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"

    # The schema is public; a transcription still running is 409.
    schema_anon = await alice.client.get("/api/v1/schemas/agent-transcript.json")
    assert schema_anon.status_code == 200
    assert schema_anon.headers["content-type"].startswith("application/schema+json")
    async with get_services().sessionmaker() as session:
        await session.execute(
            text("UPDATE transcription SET status = 'running' WHERE id = :id"), {"id": tid}
        )
        await session.commit()
    r = await alice.get(f"/api/v1/transcriptions/{tid}/agent")
    assert r.status_code == 409 and r.json()["error"]["code"] == "transcription_not_ready"
