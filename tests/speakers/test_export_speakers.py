"""Exports of a dialogue transcript: every format carries the speakers' names (pure)."""

from __future__ import annotations

import csv
import io
import json

from docx import Document

from verbatim.transcriptions.export import (
    ExportDocument,
    ExportSegment,
    ExportSpeaker,
    render,
)

DOC = ExportDocument(
    id="t1",
    title="interview.wav",
    language="en",
    duration=75.0,
    model="tiny.en",
    text="",
    segments=(
        ExportSegment(0.0, 2.0, "Good morning.", speaker="Alice"),
        ExportSegment(2.0, 4.0, "Did you bring the notes?", speaker="Alice"),
        ExportSegment(4.5, 6.0, "Yes, I did.", speaker="SPEAKER_2"),
        ExportSegment(66.0, 68.0, "Let us begin.", speaker="Alice"),
    ),
    speakers=(
        ExportSpeaker("SPEAKER_1", "Alice", 6.0, 9),
        ExportSpeaker("SPEAKER_2", "SPEAKER_2", 1.5, 3),
    ),
)


def test_txt_has_one_line_per_turn() -> None:
    assert render(DOC, "txt").content == (
        "Alice: Good morning. Did you bring the notes?\n"
        "SPEAKER_2: Yes, I did.\n"
        "Alice: Let us begin.\n"
    )


def test_subtitles_name_the_speaker() -> None:
    srt = str(render(DOC, "srt").content)
    assert "Alice: Good morning." in srt and "SPEAKER_2: Yes, I did." in srt
    vtt = str(render(DOC, "vtt").content)
    assert "<v Alice>Good morning." in vtt and "<v SPEAKER_2>Yes, I did." in vtt
    assert "Alice:" not in vtt


def test_csv_and_json_carry_speakers() -> None:
    rows = list(csv.reader(io.StringIO(str(render(DOC, "csv").content))))
    assert [row[2] for row in rows] == ["speaker", "Alice", "Alice", "SPEAKER_2", "Alice"]
    data = json.loads(render(DOC, "json").content)
    assert data["speakers"] == [
        {"label": "SPEAKER_1", "name": "Alice", "talk_time": 6.0, "word_count": 9},
        {"label": "SPEAKER_2", "name": "SPEAKER_2", "talk_time": 1.5, "word_count": 3},
    ]
    assert [s["speaker"] for s in data["segments"]] == ["Alice", "Alice", "SPEAKER_2", "Alice"]


def test_docx_has_turns_with_timestamps() -> None:
    rendered = render(DOC, "docx")
    assert rendered.filename == "interview.docx"
    assert rendered.media_type.startswith("application/vnd.openxmlformats-officedocument")
    assert isinstance(rendered.content, bytes)
    paragraphs = [p.text for p in Document(io.BytesIO(rendered.content)).paragraphs]
    assert paragraphs[0] == "interview.wav"
    assert "Speakers: Alice (00:00:06), SPEAKER_2 (00:00:01)" in paragraphs[1]
    assert paragraphs[2:] == [
        "[00:00:00] Alice\nGood morning. Did you bring the notes?",
        "[00:00:04] SPEAKER_2\nYes, I did.",
        "[00:01:06] Alice\nLet us begin.",
    ]
    bold = [
        r.text
        for p in Document(io.BytesIO(rendered.content)).paragraphs[2:]
        for r in p.runs
        if r.bold
    ]
    assert bold == ["[00:00:00] Alice", "[00:00:04] SPEAKER_2", "[00:01:06] Alice"]


def test_docx_without_speakers_and_with_control_characters() -> None:
    doc = ExportDocument(
        "t2", "a\x01b.mp3", None, None, None, "", (ExportSegment(1.0, 2.0, "bell\x07 rings"),)
    )
    paragraphs = [
        p.text for p in Document(io.BytesIO(bytes(render(doc, "docx").content))).paragraphs
    ]
    assert paragraphs == ["ab.mp3", "[00:00:01] bell rings"]
