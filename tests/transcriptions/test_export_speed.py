"""The fast cue splitter gives exactly the cues of the reference one (issue 15), and the
export service's fast path (no word decoding for txt/csv) changes no output."""

from __future__ import annotations

import io
import json
import random
import zipfile

import pytest

from verbatim.transcriptions import export
from verbatim.transcriptions.service import _render

WORDS = ["a", "to", "the", "river", "budget", "quarterly", "agreement", "internationalisation"]


def tokens(rng: random.Random, n: int, gap: float) -> list[export._Token]:
    clock = rng.uniform(0, 100)
    result = []
    for i in range(n):
        word = rng.choice(WORDS) if rng.random() > 0.02 else "x" * rng.randint(30, 42)
        length = rng.uniform(0.05, 0.9)
        sep = "" if i == 0 else rng.choice([" ", " ", " ", ""])
        result.append(export._Token(clock, clock + length, word, sep))
        clock += length + rng.uniform(0, gap)
    return result


@pytest.mark.parametrize("seed", range(40))
def test_fast_chunks_equal_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    for n in (1, 2, 3, 7, 15, 30, 60):
        for gap in (0.0, 0.3, 2.5):
            toks = tokens(rng, n, gap)
            for label in (None, "Ann", "A much longer name…"):
                assert export._chunk_fast(toks, label) == export._chunk(toks, label), (
                    n,
                    gap,
                    label,
                )


def test_rendering_from_rows_matches_the_document_path() -> None:
    rng = random.Random(15)
    rows = []
    segments = []
    clock = 0.0
    for _ in range(60):
        words = []
        for _ in range(rng.randint(0, 25)):
            word = " " + rng.choice(WORDS)
            words.append(
                {"start": clock, "end": clock + 0.3, "word": word, "probability": rng.random()}
            )
            clock += 0.35
        text = "".join(w["word"] for w in words) or " no word timings here"
        speaker = rng.choice([None, "SPEAKER_00", "Ann"])
        start, end = (words[0]["start"], clock) if words else (clock, clock + 2.0)
        rows.append((start, end, text, speaker, 0.9, json.dumps(words)))
        segments.append(
            export.ExportSegment(
                start=start,
                end=end,
                text=text,
                speaker=speaker,
                confidence=0.9,
                words=tuple(
                    export.ExportWord(w["start"], w["end"], w["word"], w["probability"])
                    for w in words
                ),
            )
        )
        clock += 1.0
    header = export.ExportDocument(
        id="t",
        title="talk.m4a",
        language="en",
        duration=clock,
        model="tiny.en",
        text="x",
        segments=(),
    )
    full = export.ExportDocument(**{**header.__dict__, "segments": tuple(segments)})
    for fmt in export.FORMATS:
        fast, slow = _render(header, rows, fmt), export.render(full, fmt)
        if fmt == "docx":
            # The zip stamps each part with the time of writing: compare the parts instead.
            assert (fast.filename, fast.media_type) == (slow.filename, slow.media_type)
            assert docx_parts(fast.content) == docx_parts(slow.content)
        else:
            assert fast == slow, fmt


def docx_parts(content: str | bytes) -> dict[str, bytes]:
    assert isinstance(content, bytes)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def reference_cues(doc: export.ExportDocument, *, with_labels: bool) -> list[tuple[object, ...]]:
    """The cues as the token path lays them out, with the reference splitter `_chunk`."""
    word_sep = export._word_separator(doc.language)
    cues = []
    for seg in doc.segments:
        speaker = export._clean_label(seg.speaker)
        label = export._shorten(speaker) if speaker and with_labels else None
        for chunk in export._chunk(export._segment_tokens(seg, word_sep), label):
            lines = export._layout(export._labelled(chunk, label))
            cues.append(
                (export._to_ms(chunk[0].start), export._to_ms(chunk[-1].end), lines, speaker)
            )
    return export._sequence_rows(cues)


def random_document(rng: random.Random) -> export.ExportDocument:
    segments = []
    clock = rng.uniform(0, 50)
    for _ in range(rng.randint(1, 12)):
        toks = tokens(rng, rng.choice([1, 2, 5, 14, 30, 45, 80]), rng.choice([0.0, 0.3, 2.5]))
        words = [export.ExportWord(t.start + clock, t.end + clock, " " + t.text) for t in toks]
        if rng.random() < 0.1 and len(words) > 2:
            words[1], words[2] = words[2], words[1]  # times out of order
        text = "".join(w.word for w in words)
        if rng.random() < 0.15:
            words = []  # no word timings: split by proportion
        speaker = rng.choice([None, "Ann", "A rather long speaker name here"])
        start = toks[0].start + clock
        segments.append(
            export.ExportSegment(
                start, start + rng.uniform(0, 40), text, speaker, None, tuple(words)
            )
        )
        clock = segments[-1].end + rng.uniform(-2, 3)
    language = rng.choice(["en", "ja"])
    return export.ExportDocument("t", "x.m4a", language, None, None, "", tuple(segments))


@pytest.mark.parametrize("seed", range(60))
def test_fast_cue_builder_equals_the_reference(seed: int) -> None:
    """The whole fast subtitle path (plain lists, binary searches, only the reachable cue
    ends) gives the cues of the token path with the reference splitter."""
    doc = random_document(random.Random(seed))
    for with_labels in (True, False):
        assert export._build_cues(doc, with_labels=with_labels) == reference_cues(
            doc, with_labels=with_labels
        )
