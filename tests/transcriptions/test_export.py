"""Tests for verbatim.transcriptions.export: every format, parsed back and checked."""

import csv
import html
import io
import itertools
import json
import math
import re
from dataclasses import dataclass

import pytest

from verbatim.transcriptions.export import (
    FORMATS,
    ExportDocument,
    ExportSegment,
    ExportWord,
    render,
)

# --- helpers ----------------------------------------------------------------------------------


def make_doc(
    *segments: ExportSegment, language: str | None = "en", title: str = "meeting.mp3"
) -> ExportDocument:
    return ExportDocument(
        id="6f1c2a9e-0000-4000-8000-000000000001",
        title=title,
        language=language,
        duration=max((s.end for s in segments), default=0.0),
        model="large-v3",
        text=" ".join(s.text.strip() for s in segments),
        segments=segments,
    )


def timed_words(text: str, start: float, step: float) -> tuple[ExportWord, ...]:
    """Words as Whisper gives them: leading space, evenly spaced, each lasting 80% of a step."""
    return tuple(
        ExportWord(start + i * step, start + i * step + step * 0.8, f" {word}", 0.9)
        for i, word in enumerate(text.split())
    )


TIMING = re.compile(
    r"^(\d{2,}):([0-5]\d):([0-5]\d)([,.])(\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d)\4(\d{3})$"
)


@dataclass
class Cue:
    start: float
    end: float
    lines: list[str]  # displayed text: VTT tags removed and entities decoded


def parse_timing(line: str, decimal_mark: str) -> tuple[float, float]:
    match = TIMING.match(line)
    assert match, f"bad timing line: {line!r}"
    h1, m1, s1, mark, ms1, h2, m2, s2, ms2 = match.groups()
    assert mark == decimal_mark
    start = int(h1) * 3600 + int(m1) * 60 + int(s1) + int(ms1) / 1000
    end = int(h2) * 3600 + int(m2) * 60 + int(s2) + int(ms2) / 1000
    return start, end


def parse_srt(content: str) -> list[Cue]:
    if not content:
        return []
    assert content.endswith("\n") and not content.endswith("\n\n\n")
    cues = []
    for number, block in enumerate(content.rstrip("\n").split("\n\n"), start=1):
        lines = block.split("\n")
        assert lines[0] == str(number)
        start, end = parse_timing(lines[1], ",")
        cues.append(Cue(start, end, lines[2:]))
    return cues


def parse_vtt(content: str) -> list[Cue]:
    header, *blocks = content.rstrip("\n").split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        timing, *lines = block.split("\n")
        start, end = parse_timing(timing, ".")
        shown = [html.unescape(re.sub(r"^<v [^>]+>", "", line)) for line in lines]
        cues.append(Cue(start, end, shown))
    return cues


def parse(fmt: str, content: str) -> list[Cue]:
    return parse_srt(content) if fmt == "srt" else parse_vtt(content)


def assert_well_formed(cues: list[Cue]) -> None:
    for cue in cues:
        assert cue.end - cue.start >= 0.1 - 1e-9, cue
        assert 1 <= len(cue.lines) <= 2, cue
        assert all(0 < len(line) <= 42 for line in cue.lines), cue
    for current, following in itertools.pairwise(cues):
        assert current.end <= following.start, (current, following)


def shown_words(cues: list[Cue], labels: tuple[str, ...] = ()) -> list[str]:
    """All words across cues in order, minus the SRT "Name: " labels."""
    words = []
    for cue in cues:
        text = " ".join(cue.lines)
        for label in labels:
            text = text.removeprefix(f"{label}: ")
        words.extend(text.split())
    return words


LONG_TALK = (
    "So the first thing I want to cover is the migration plan for the storage layer, because "
    "we have been postponing it for two quarters and the current cluster is running out of "
    "disk, which means that by the end of next month we will either have to buy more hardware "
    "or finally move the cold data to object storage as we agreed last year."
)
NOTES = (
    "Action items: Carol drafts the budget, Dave checks the vendor contract, and everyone "
    "reviews the runbook before Friday so that we can schedule the cut-over for the weekend "
    "after the release freeze ends."
)


def lecture() -> ExportDocument:
    return make_doc(
        ExportSegment(
            0.0,
            6.2,
            "Good morning everyone, thanks for joining.",
            speaker="Alice",
            words=timed_words("Good morning everyone, thanks for joining.", 0.0, 1.0),
        ),
        ExportSegment(6.5, 30.0, LONG_TALK, speaker="Bob", words=timed_words(LONG_TALK, 6.5, 0.35)),
        ExportSegment(31.0, 52.0, NOTES),  # no speaker, no word timestamps
        ExportSegment(52.0, 52.0, "Okay."),  # zero-length segment
    )


# --- subtitles --------------------------------------------------------------------------------


def test_srt_exact_output() -> None:
    doc = make_doc(
        ExportSegment(0.5, 2.0, " Hello there. ", speaker="Alice"),
        ExportSegment(2.5, 4.25, "General Kenobi!"),
    )
    assert render(doc, "srt").content == (
        "1\n00:00:00,500 --> 00:00:02,000\nAlice: Hello there.\n\n"
        "2\n00:00:02,500 --> 00:00:04,250\nGeneral Kenobi!\n"
    )


def test_vtt_exact_output() -> None:
    doc = make_doc(
        ExportSegment(0.5, 2.0, " Hello there. ", speaker="Alice"),
        ExportSegment(2.5, 4.25, "General Kenobi!"),
    )
    assert render(doc, "vtt").content == (
        "WEBVTT\n\n"
        "00:00:00.500 --> 00:00:02.000\n<v Alice>Hello there.\n\n"
        "00:00:02.500 --> 00:00:04.250\nGeneral Kenobi!\n"
    )


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_respect_layout_and_timing_limits(fmt: str) -> None:
    doc = lecture()
    cues = parse(fmt, render(doc, fmt).content)

    assert_well_formed(cues)
    assert all(cue.end - cue.start <= 7.0 for cue in cues)
    expected = [w for seg in doc.segments for w in _segment_words(seg)]
    assert shown_words(cues, labels=("Alice", "Bob")) == expected


def _segment_words(seg: ExportSegment) -> list[str]:
    return [w.word.strip() for w in seg.words] if seg.words else seg.text.split()


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_long_segment_is_split_at_word_times(fmt: str) -> None:
    text = " ".join(f"word{i:02d}" for i in range(60))
    words = timed_words(text, 100.0, 0.5)  # 30 seconds of speech
    doc = make_doc(ExportSegment(100.0, 130.0, text, words=words))

    cues = parse(fmt, render(doc, fmt).content)

    assert len(cues) >= 5  # 30 s cannot fit in fewer cues of at most 7 s
    assert_well_formed(cues)
    by_text = {w.word.strip(): w for w in words}
    for cue in cues:
        cue_words = " ".join(cue.lines).split()
        assert cue.start == pytest.approx(by_text[cue_words[0]].start, abs=1e-9)
        assert cue.end == pytest.approx(by_text[cue_words[-1]].end, abs=1e-9)
        assert cue.end - cue.start <= 7.0
    assert shown_words(cues) == text.split()


def test_segment_without_word_times_is_split_proportionally() -> None:
    text = " ".join(f"word{i:02d}" for i in range(30))  # 209 characters over 30 s
    doc = make_doc(ExportSegment(10.0, 40.0, text))

    cues = parse_srt(render(doc, "srt").content)

    assert len(cues) > 1
    assert_well_formed(cues)
    for cue in cues:
        cue_words = " ".join(cue.lines).split()
        first_offset = text.index(cue_words[0])
        last_offset = text.index(cue_words[-1]) + len(cue_words[-1])
        assert cue.start == pytest.approx(10.0 + 30.0 * first_offset / len(text), abs=1e-3)
        assert cue.end == pytest.approx(10.0 + 30.0 * last_offset / len(text), abs=1e-3)
        assert cue.end - cue.start <= 7.0
    assert cues[0].start == 10.0
    assert cues[-1].end == 40.0
    assert shown_words(cues) == text.split()


def test_edited_text_wins_over_stale_word_timestamps() -> None:
    stale = timed_words("Their going too the cinema", 0.0, 0.5)
    segment = ExportSegment(0.0, 2.5, "They're going to the cinema.", words=stale)

    cues = parse_srt(render(make_doc(segment), "srt").content)

    assert cues[0].lines == ["They're going to the cinema."]
    assert (cues[0].start, cues[0].end) == (0.0, 2.5)  # the segment's span, not the words'


def test_segment_is_split_into_even_cues_without_orphans() -> None:
    text = " ".join(["abcde"] * 15)  # 89 characters: too much for one 2x42 cue
    cues = parse_srt(render(make_doc(ExportSegment(0.0, 5.0, text)), "srt").content)

    assert [len(" ".join(c.lines).split()) for c in cues] in ([7, 8], [8, 7])


def test_two_lines_are_balanced() -> None:
    text = "The quick brown fox jumps over the lazy dog and keeps on running"
    cues = parse_srt(render(make_doc(ExportSegment(0.0, 4.0, text)), "srt").content)

    assert len(cues) == 1
    top, bottom = cues[0].lines
    words = text.split()
    narrowest = min(
        max(len(" ".join(words[:i])), len(" ".join(words[i:]))) for i in range(1, len(words))
    )
    assert max(len(top), len(bottom)) == narrowest
    assert f"{top} {bottom}" == text


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_overlapping_segments_become_sequential_cues(fmt: str) -> None:
    doc = make_doc(
        ExportSegment(0.0, 4.0, "First speaker talks", speaker="A"),
        ExportSegment(2.0, 5.0, "Second interrupts", speaker="B"),
        ExportSegment(2.0, 3.0, "Third too", speaker="C"),
        ExportSegment(10.0, 10.0, "Zero length"),
        ExportSegment(10.0, 10.0, "Also zero"),
        ExportSegment(9.0, 9.5, "Out of order"),
    )
    cues = parse(fmt, render(doc, fmt).content)

    assert_well_formed(cues)
    # Clipped at the next start; pushed back where clipping would go under 0.1 s;
    # sorted by start, keeping segment order for equal starts.
    assert [(c.start, c.end) for c in cues] == [
        (0.0, 2.0),
        (2.0, 2.1),
        (2.1, 3.0),
        (9.0, 9.5),
        (10.0, 10.1),
        (10.1, 10.2),
    ]
    assert shown_words(cues, labels=("A", "B", "C"))[-4:] == ["Zero", "length", "Also", "zero"]


def test_hours_and_millisecond_rounding() -> None:
    doc = make_doc(
        ExportSegment(3725.5, 3728.25, "Late"), ExportSegment(3730.12345, 3731.0006, "X")
    )

    assert "01:02:05,500 --> 01:02:08,250" in render(doc, "srt").content
    assert "01:02:10,123 --> 01:02:11,001" in render(doc, "srt").content
    assert "01:02:05.500 --> 01:02:08.250" in render(doc, "vtt").content


def test_times_are_never_negative() -> None:
    doc = make_doc(ExportSegment(-0.5, 1.0, "Early"), ExportSegment(-3.0, -2.0, "Bogus"))
    cues = parse_srt(render(doc, "srt").content)

    assert_well_formed(cues)
    assert cues[0].start == 0.0


def test_vtt_escapes_text_and_tags_voices() -> None:
    doc = make_doc(ExportSegment(0.0, 2.0, "Tom & Jerry <3 -->", speaker="Dr. <Evil> & Co"))
    content = render(doc, "vtt").content

    assert "<v Dr. &lt;Evil&gt; &amp; Co>Tom &amp; Jerry &lt;3 --&gt;\n" in content
    body = content.split("\n", 3)[3]  # after header, blank line and timing line
    assert body.count("<") == 1  # only the voice tag is markup
    assert parse_vtt(content)[0].lines == ["Tom & Jerry <3 -->"]


def test_srt_labels_speakers_in_text_and_vtt_does_not() -> None:
    text = "This sentence is exactly forty chars ok."
    doc = make_doc(ExportSegment(0.0, 3.0, text, speaker="Alice"))

    # 47 characters with the label: SRT needs two lines where VTT fits the text on one.
    srt_lines = parse_srt(render(doc, "srt").content)[0].lines
    assert srt_lines == ["Alice: This sentence is", "exactly forty chars ok."]
    assert parse_vtt(render(doc, "vtt").content)[0].lines == [text]
    assert f"<v Alice>{text}\n" in render(doc, "vtt").content


def test_long_speaker_names_are_shortened_in_srt_only() -> None:
    speaker = "Professor Maximilian Featherstonehaugh"
    doc = make_doc(ExportSegment(0.0, 3.0, "Hello", speaker=speaker))

    srt_cues = parse_srt(render(doc, "srt").content)
    assert_well_formed(srt_cues)
    assert srt_cues[0].lines[0].startswith("Professor Maximilia…:")
    assert f"<v {speaker}>Hello" in render(doc, "vtt").content


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_unbreakable_token_is_cut_to_line_width(fmt: str) -> None:
    url = "https://example.com/" + "a" * 80 + "/index.html"
    doc = make_doc(ExportSegment(0.0, 4.0, f"See {url} now"))
    cues = parse(fmt, render(doc, fmt).content)

    assert_well_formed(cues)
    assert url in "".join(line for cue in cues for line in cue.lines)


def test_spaceless_languages_join_words_directly() -> None:
    words = (ExportWord(0.0, 0.5, "你好"), ExportWord(0.5, 1.0, "世界"))
    segment = ExportSegment(0.0, 1.0, "你好世界", speaker="甲", words=words)

    assert parse_srt(render(make_doc(segment, language="zh"), "srt").content)[0].lines == [
        "甲: 你好世界"
    ]
    assert parse_srt(render(make_doc(segment, language="en"), "srt").content)[0].lines == [
        "甲: 你好 世界"
    ]


# --- txt, csv, json ---------------------------------------------------------------------------


def test_txt_has_one_line_per_segment() -> None:
    doc = make_doc(
        ExportSegment(0.0, 1.0, "  Hello   there.\n", speaker="Alice"),
        ExportSegment(1.0, 2.0, "Line one\nline two"),
        ExportSegment(2.0, 3.0, "   ", speaker="Bob"),  # nothing said: no line
        ExportSegment(3.0, 4.0, "Bye.", speaker="  "),
    )
    rendered = render(doc, "txt")

    assert rendered.content == "Alice: Hello there.\nLine one line two\nBye.\n"
    assert rendered.media_type == "text/plain; charset=utf-8"


def test_txt_without_segments_uses_document_text() -> None:
    doc = ExportDocument("id", "a.wav", "en", 1.0, None, " Just text. ", ())
    assert render(doc, "txt").content == "Just text.\n"


def test_csv_round_trips_through_csv_reader() -> None:
    tricky = 'He said "no, thanks",\nthen left; a\\b'
    doc = make_doc(
        ExportSegment(0.0, 1.23456, tricky, speaker="O'Brien, J.", confidence=0.91234),
        ExportSegment(1.5, 2.0, " plain ", speaker=None, confidence=None),
    )
    rows = list(csv.reader(io.StringIO(render(doc, "csv").content, newline="")))

    assert rows == [
        ["start", "end", "speaker", "text", "confidence"],
        ["0.000", "1.235", "O'Brien, J.", tricky, "0.912"],
        ["1.500", "2.000", "", "plain", ""],
    ]


def test_json_round_trips_with_all_fields() -> None:
    words = (ExportWord(0.12345, 0.5, " Café", 0.98765), ExportWord(0.5, 0.9, " crème", None))
    doc = make_doc(
        ExportSegment(0.12345, 0.9, " Café crème", speaker="Zoë", confidence=0.87654, words=words),
        ExportSegment(1.0, 2.0, "Hmm", confidence=math.nan),
    )
    rendered = render(doc, "json")

    assert "Café" in rendered.content  # ensure_ascii=False keeps it readable
    assert json.loads(rendered.content) == {
        "id": doc.id,
        "title": "meeting.mp3",
        "language": "en",
        "duration": 2.0,
        "model": "large-v3",
        "text": doc.text,
        "speakers": [],
        "segments": [
            {
                "id": 0,
                "start": 0.123,
                "end": 0.9,
                "text": " Café crème",
                "speaker": "Zoë",
                "confidence": 0.877,
                "words": [
                    {"start": 0.123, "end": 0.5, "word": " Café", "probability": 0.988},
                    {"start": 0.5, "end": 0.9, "word": " crème", "probability": None},
                ],
            },
            {
                "id": 1,
                "start": 1.0,
                "end": 2.0,
                "text": "Hmm",
                "speaker": None,
                "confidence": None,  # NaN is not JSON
                "words": [],
            },
        ],
    }


# --- dispatch, file names, empty documents ----------------------------------------------------


@pytest.mark.parametrize("fmt", ["pdf", "", "SRT", "srt "])
def test_unknown_format_raises(fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        render(lecture(), fmt)


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("txt", "text/plain; charset=utf-8"),
        ("srt", "application/x-subrip; charset=utf-8"),
        ("vtt", "text/vtt; charset=utf-8"),
        ("json", "application/json"),
        ("csv", "text/csv; charset=utf-8"),
    ],
)
def test_media_types(fmt: str, media_type: str) -> None:
    assert fmt in FORMATS
    assert render(lecture(), fmt).media_type == media_type


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ("meeting.mp3", "meeting"),
        ("../../etc/pa ss wd.mp3", "pa_ss_wd"),
        ("C:\\Users\\bob\\My Meeting (final).m4a", "My_Meeting_final"),
        ("Réunion d'équipe.wav", "Reunion_d_equipe"),
        ("archive.tar.gz", "archive.tar"),
        (".hidden", "hidden"),
        ("--rm -rf.mp3", "rm_-rf"),
        ("会议.mp3", "transcript"),
        ("..", "transcript"),
        ("", "transcript"),
        ("a" * 300 + ".mp3", "a" * 100),
    ],
)
def test_filename_is_sanitised(title: str, stem: str) -> None:
    doc = make_doc(ExportSegment(0.0, 1.0, "Hi"), title=title)
    for fmt in FORMATS:
        filename = render(doc, fmt).filename
        assert filename == f"{stem}.{'agent.json' if fmt == 'agent' else fmt}"
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", filename)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_transcript_renders_valid_output(fmt: str) -> None:
    doc = ExportDocument("id", "empty.wav", None, None, None, "", ())
    content = render(doc, fmt).content

    if fmt == "srt":
        assert content == ""
    elif fmt == "vtt":
        assert content == "WEBVTT\n"
        assert parse_vtt(content) == []
    elif fmt == "txt":
        assert content == ""
    elif fmt == "json":
        assert json.loads(content) == {
            "id": "id",
            "title": "empty.wav",
            "language": None,
            "duration": None,
            "model": None,
            "text": "",
            "speakers": [],
            "segments": [],
        }
    elif fmt == "docx":
        assert isinstance(content, bytes) and content.startswith(b"PK")
        assert docx_paragraphs(content) == ["empty.wav"]
    elif fmt == "tsv":
        assert content == "start\tend\tspeaker\ttext\n"
    elif fmt == "agent":
        payload = json.loads(content)
        assert payload["turns"] == [] and payload["speakers"] == [] and payload["id"] == "id"
    else:
        assert fmt == "csv" and isinstance(content, str)
        assert list(csv.reader(io.StringIO(content))) == [
            ["start", "end", "speaker", "text", "confidence"]
        ]


def docx_paragraphs(content: bytes) -> list[str]:
    from docx import Document

    return [p.text for p in Document(io.BytesIO(content)).paragraphs]
