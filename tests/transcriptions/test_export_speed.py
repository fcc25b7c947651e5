"""The fast cue splitter gives exactly the cues of the reference one (issue 15), and the
export service's fast path (no word decoding for txt/csv) changes no output."""

from __future__ import annotations

import json
import random

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
        assert _render(header, rows, fmt) == export.render(full, fmt), fmt
