"""SRT and VTT output of a fixed transcript, pinned byte for byte (issue 15: the subtitle
path was rewritten for speed and must not change a single cue).

The transcript covers what the cue builder decides on: speakers (renamed, long, blank, with
line breaks), cue splitting at word times and by proportion, edited text over stale words,
unbreakable tokens, word times out of order, overlapping segments, markup to escape, and an
unspaced script. The golden files were written by the implementation before the rewrite;
`python -m tests.transcriptions.test_export_golden` rewrites them (only after checking a
change on purpose).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from verbatim.transcriptions import export
from verbatim.transcriptions.service import _render

GOLDEN = Path(__file__).parent / "golden"
VOCABULARY = ["a", "to", "the", "river", "budget", "quarterly", "agreement", "next", "x&y", "<b>"]
SPEAKERS = [
    None,
    "SPEAKER_00",
    "Alice",
    "Dr. Maximilian von Habsburg-Lothringen",
    "Ann\nMarie",
    " ",
]
UNSPACED = ["会議", "予算", "川", "次", "合意", "四半期"]


def golden_rows(language: str) -> list[tuple[Any, ...]]:
    """Segment rows as the export query returns them: start, end, text, speaker, confidence,
    words as JSON text."""
    rng = random.Random(f"golden-{language}")
    spaced = language != "ja"
    rows: list[tuple[Any, ...]] = []
    clock = 0.0
    for k in range(160):
        kind = rng.random()
        count = rng.choice([0, 1, 2, 5, 12, 30, 31, 60]) if kind > 0.1 else 0
        words = []
        start = clock
        for i in range(count):
            token = rng.choice(VOCABULARY if spaced else UNSPACED)
            if rng.random() < 0.02:
                token = "https://example.org/" + "long" * rng.randint(8, 30)
            length = rng.uniform(0.05, 0.8)
            words.append(
                {
                    "start": round(clock, 3),
                    "end": round(clock + length, 3),
                    "word": (" " if spaced or i == 0 else "") + token,
                    "probability": round(rng.random(), 4),
                }
            )
            clock += length + rng.choice([0.0, 0.05, 0.3, 1.5])
        if words and rng.random() < 0.05:
            # Word times out of order (seen from some engines after alignment).
            words[-1]["start"], words[0]["start"] = words[0]["start"], words[-1]["start"]
        text = "".join(w["word"] for w in words)
        if not words:
            # No word timings: timed by proportion over the segment.
            pieces = rng.choices(VOCABULARY if spaced else UNSPACED, k=rng.randint(0, 40))
            text = (" " if spaced else "").join(pieces)
            clock += rng.uniform(0.0, 12.0)
        elif rng.random() < 0.08:
            text = text.replace("river", "lake")  # edited after transcription
        if rng.random() < 0.05:
            text += "\nsecond line\twith a tab"
        end = clock
        if rng.random() < 0.05:
            start -= rng.uniform(0.0, 3.0)  # overlaps the previous segment
        speaker = SPEAKERS[k // 20 % len(SPEAKERS)] if k % 7 else rng.choice(SPEAKERS)
        confidence = round(rng.random(), 3)
        rows.append((round(start, 3), round(end, 3), text, speaker, confidence, json.dumps(words)))
        clock += rng.choice([0.0, 0.2, 2.0])
    return rows


def golden_document(language: str) -> export.ExportDocument:
    rows = golden_rows(language)
    segments = tuple(
        export.ExportSegment(
            start=start,
            end=end,
            text=text,
            speaker=speaker,
            confidence=confidence,
            words=tuple(
                export.ExportWord(w["start"], w["end"], w["word"], w["probability"])
                for w in json.loads(words)
            ),
        )
        for start, end, text, speaker, confidence, words in rows
    )
    return _header(language, segments)


def _header(
    language: str, segments: tuple[export.ExportSegment, ...] = ()
) -> export.ExportDocument:
    return export.ExportDocument(
        id="6f1c2a9e-0000-4000-8000-000000000015",
        title="golden.m4a",
        language=language,
        duration=None,
        model="tiny",
        text="",
        segments=segments,
    )


CASES = [(language, fmt) for language in ("en", "ja") for fmt in ("srt", "vtt")]


@pytest.mark.parametrize(("language", "fmt"), CASES)
def test_document_path_matches_golden(language: str, fmt: str) -> None:
    expected = (GOLDEN / f"{language}.{fmt}").read_text(encoding="utf-8")
    assert export.render(golden_document(language), fmt).content == expected


@pytest.mark.parametrize(("language", "fmt"), CASES)
def test_row_path_matches_golden(language: str, fmt: str) -> None:
    """The service renders straight from rows; it gives the same bytes."""
    expected = (GOLDEN / f"{language}.{fmt}").read_text(encoding="utf-8")
    assert _render(_header(language), golden_rows(language), fmt).content == expected


def test_golden_files_cover_the_cases() -> None:
    """The fixture really exercises what it claims to (so the pin means something)."""
    srt = (GOLDEN / "en.srt").read_text(encoding="utf-8")
    vtt = (GOLDEN / "en.vtt").read_text(encoding="utf-8")
    cues = srt.count(" --> ")
    assert cues > 300
    assert "Alice: " in srt and "Dr. Maximilian von …: " in srt and "Ann Marie: " in srt
    assert "<v Dr. Maximilian von Habsburg-Lothringen>" in vtt
    assert "&amp;" in vtt and "&lt;b&gt;" in vtt and "x&y" in srt
    assert "lake" in srt and "https://example.org/long" in srt
    two_line_cues = sum(1 for block in srt.split("\n\n") if block.count("\n") == 3)
    assert two_line_cues > 100
    assert "会議" in (GOLDEN / "ja.srt").read_text(encoding="utf-8")


def _write() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for language, fmt in CASES:
        content = export.render(golden_document(language), fmt).content
        assert isinstance(content, str)
        (GOLDEN / f"{language}.{fmt}").write_text(content, encoding="utf-8")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    _write()
