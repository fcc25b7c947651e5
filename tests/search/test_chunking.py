"""The chunker on transcripts shaped like the engine's output (segments whose text and words
start with a space, punctuation attached to words, the transcript text being the segments
joined), and on the edge cases: empty, no punctuation, one huge segment, unicode, dialogue."""

from __future__ import annotations

import itertools
import re
import time

import pytest

from verbatim.search.chunking import (
    MAX_WORDS,
    OVERLAP_WORDS,
    Chunk,
    SegmentIn,
    chunk_transcript,
    count_words,
    extract_keywords,
)

SENTENCES = [
    "We need to talk about the delivery schedule for the new warehouse.",
    "The supplier told us the steel beams will arrive two weeks late.",
    "So I think we should move the delivery to March instead of February.",
    "Does anyone object to that?",
    "Marketing wanted the launch event in the same week, which is now a problem.",
    "Let us check whether the venue can be booked later in spring.",
    "Another topic is the budget, which has grown by twelve percent since the summer.",
    "Most of the increase comes from energy prices and from the extra security staff.",
    "I would like a breakdown per department before the board meeting.",
    "Finally, remember that the office is closed on Friday for maintenance.",
]


def whisper_like(
    sentences: list[str],
    *,
    words_per_segment: int = 18,
    speakers: list[str | None] | None = None,
    word_s: float = 0.3,
    with_words: bool = True,
) -> tuple[str, list[SegmentIn]]:
    """Segments as faster-whisper makes them: text and words with a leading space, a segment
    break every `words_per_segment` words or at a sentence end past half of it. With
    `speakers`, each sentence is one turn of speakers[i % len(speakers)]."""
    segments: list[SegmentIn] = []
    t = 0.0
    for i, sentence in enumerate(sentences):
        speaker = speakers[i % len(speakers)] if speakers else None
        words = sentence.split()
        for j in range(0, len(words), words_per_segment):
            part = words[j : j + words_per_segment]
            timed = []
            start = t
            for w in part:
                timed.append(
                    {"start": round(t, 3), "end": round(t + word_s * 0.8, 3), "word": " " + w}
                )
                t += word_s
            segments.append(
                SegmentIn(
                    start=round(start, 3),
                    end=round(t - word_s * 0.2, 3),
                    text=" " + " ".join(part),
                    speaker=speaker,
                    words=timed if with_words else (),
                )
            )
        t += 0.5
    text = " ".join(s.text for s in segments).strip()
    return text, segments


def long_sentences(n: int) -> list[str]:
    return [SENTENCES[i % len(SENTENCES)] for i in range(n)]


def words_of(text: str) -> list[str]:
    return text.split()


def check_offsets(text: str, chunks: list[Chunk]) -> None:
    for c in chunks:
        assert text[c.start_char_pos : c.end_char_pos] == c.text
        assert c.text == c.text.strip() and c.text


def test_an_empty_transcript_has_no_chunks() -> None:
    assert chunk_transcript("", []) == []
    assert chunk_transcript(None, []) == []
    assert chunk_transcript("  ", [SegmentIn(0.0, 1.0, "   "), SegmentIn(1.0, 2.0, "")]) == []


def test_a_short_transcript_is_one_chunk_with_its_times() -> None:
    text, segments = whisper_like(SENTENCES[:2])
    [chunk] = chunk_transcript(text, segments)
    assert chunk.text == text
    assert (chunk.start_char_pos, chunk.end_char_pos) == (0, len(text))
    assert chunk.start_time == segments[0].words[0]["start"]
    assert chunk.end_time == segments[-1].words[-1]["end"]
    assert chunk.index == 0 and chunk.speaker is None


def test_a_long_transcript_is_cut_at_sentences_with_a_small_overlap() -> None:
    text, segments = whisper_like(long_sentences(120))  # about 1,600 words
    chunks = chunk_transcript(text, segments)
    check_offsets(text, chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len(chunks) >= 8
    for c in chunks:
        assert c.word_count == len(words_of(c.text)) <= MAX_WORDS
        assert c.word_count >= 100, c.word_count  # the tail is folded into the last chunk
        assert c.text.endswith((".", "?")), c.text[-40:]  # a sentence end
    for a, b in itertools.pairwise(chunks):
        assert a.start_char_pos < b.start_char_pos
        overlap = (
            text[b.start_char_pos : a.end_char_pos] if b.start_char_pos < a.end_char_pos else ""
        )
        assert len(words_of(overlap)) <= OVERLAP_WORDS
        assert overlap == "" or a.text.endswith(overlap)  # the overlap is a's last sentence
        assert a.start_time <= b.start_time and a.end_time <= b.end_time
        # Nothing is skipped between chunks.
        assert not text[a.end_char_pos : b.start_char_pos].strip()
    assert chunks[0].start_char_pos == 0 and chunks[-1].end_char_pos == len(text)
    # Times are those of the first and last word inside the chunk.
    all_words = [w for s in segments for w in s.words]
    for c in chunks:
        first_word = c.text.split()[0]
        starts = [w["start"] for w in all_words if w["word"].strip() == first_word]
        assert c.start_time in starts
        assert c.end_time > c.start_time


def test_one_long_segment_without_punctuation_is_cut_at_words() -> None:
    words = [f"word{i}" for i in range(1000)]
    text, segments = whisper_like([" ".join(words)], words_per_segment=1000)
    assert len(segments) == 1
    chunks = chunk_transcript(text, segments)
    check_offsets(text, chunks)
    assert all(0 < c.word_count <= MAX_WORDS for c in chunks)
    assert sum(c.word_count for c in chunks) == 1000  # no overlap without sentence ends
    # Each chunk is timed by its own words, not by the whole segment.
    for c in chunks:
        first = int(c.text.split()[0].removeprefix("word"))
        last = int(c.text.split()[-1].removeprefix("word"))
        assert c.start_time == pytest.approx(first * 0.3, abs=1e-3)
        assert c.end_time == pytest.approx(last * 0.3 + 0.24, abs=1e-3)


def test_without_word_times_the_segment_time_is_interpolated() -> None:
    words = [f"w{i}" for i in range(600)]
    text = " ".join(words)
    chunks = chunk_transcript(text, [SegmentIn(10.0, 610.0, " " + text)])
    check_offsets(text, chunks)
    assert chunks[0].start_time == 10.0 and chunks[-1].end_time == 610.0
    for c in chunks:
        expected = 10.0 + 600.0 * c.start_char_pos / len(text)
        assert c.start_time == pytest.approx(expected, abs=0.01)


def test_a_huge_segment_is_chunked_quickly_and_bounded() -> None:
    text = " ".join(long_sentences(1500))  # about 20,000 words in one segment
    started = time.perf_counter()
    chunks = chunk_transcript(text, [SegmentIn(0.0, 7200.0, text)])
    assert time.perf_counter() - started < 5.0
    check_offsets(text, chunks)
    assert all(c.word_count <= MAX_WORDS for c in chunks)
    assert 80 <= len(chunks) <= 200
    assert chunks[-1].end_time == 7200.0


def test_unicode_offsets_are_string_indices() -> None:
    sentences = [
        "Café crème à Zürich, naïve façade — très «jolie».",
        "Das Mädchen aß süße Äpfel 🍎 und Müsli.",
        "東京で会議がありました。来週も続けます。",
        "Ça coûte 12 € ou 10 £!",
    ] * 30
    text, segments = whisper_like(sentences, words_per_segment=7)
    chunks = chunk_transcript(text, segments)
    check_offsets(text, chunks)
    assert "🍎" in "".join(c.text for c in chunks)
    # CJK ideographs count one word each (no spaces in those scripts).
    assert count_words("東京で会議") == 5
    assert count_words("Café crème") == 2


def test_cjk_text_without_spaces_is_cut_at_its_full_stops() -> None:
    text = "今日は新しい倉庫の納品について話します。" * 40
    chunks = chunk_transcript(text, [SegmentIn(0.0, 120.0, text)])
    check_offsets(text, chunks)
    assert len(chunks) >= 3
    assert all(c.text.endswith("。") and c.word_count <= MAX_WORDS for c in chunks)


def test_dialogue_chunks_never_cross_a_speaker_turn() -> None:
    # Long turns (each sentence repeated) so a turn spans several chunks.
    turns = []
    for i in range(8):
        turns.append(" ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(25)))
    text, segments = whisper_like(turns, speakers=["SPEAKER_00", "SPEAKER_01"])
    chunks = chunk_transcript(text, segments)
    check_offsets(text, chunks)
    spans: list[tuple[int, int, str | None]] = []  # (start, end, speaker) of each turn
    cursor = 0
    for seg in segments:
        at = text.find(seg.text.strip(), cursor)
        cursor = at + len(seg.text.strip())
        if spans and spans[-1][2] == seg.speaker:
            spans[-1] = (spans[-1][0], cursor, seg.speaker)
        else:
            spans.append((at, cursor, seg.speaker))
    assert len(spans) == 8
    for c in chunks:
        [turn] = [s for s in spans if s[0] <= c.start_char_pos < s[1]]
        assert c.end_char_pos <= turn[1], "a chunk runs into the next speaker's turn"
        assert c.speaker == turn[2]
    # Every turn is covered, and short turns make their own chunks.
    assert {c.speaker for c in chunks} == {"SPEAKER_00", "SPEAKER_01"}
    short_text, short_segments = whisper_like(
        ["Good morning.", "Did you bring the notes?", "Yes, I printed them.", "Great."],
        speakers=["A", "B"],
    )
    short = chunk_transcript(short_text, short_segments)
    assert [(c.text, c.speaker) for c in short] == [
        ("Good morning.", "A"),
        ("Did you bring the notes?", "B"),
        ("Yes, I printed them.", "A"),
        ("Great.", "B"),
    ]


@pytest.mark.parametrize("where", ["steel beams", "object to that"])
def test_text_edited_away_from_its_segments_is_indexed_as_edited(where: str) -> None:
    text, segments = whisper_like(SENTENCES[:4])
    edited = text.replace(where, where.upper())
    chunks = chunk_transcript(edited, segments)
    check_offsets(edited, chunks)
    assert chunks[0].start_char_pos == 0 and chunks[-1].end_char_pos == len(edited)
    assert where.upper() in " ".join(c.text for c in chunks)
    # A segment whose text has gone is timed by the segment.
    [seg] = [s for s in segments if where in s.text]
    [chunk] = [c for c in chunks if where.upper() in c.text]
    assert chunk.start_time <= seg.start and chunk.end_time >= seg.end


def test_keywords_are_frequent_content_words() -> None:
    keywords = extract_keywords(
        "The delivery of the beams is late. We move the delivery to March. "
        "March is fine for the delivery, says the supplier."
    )
    assert keywords[:2] == ["delivery", "march"]
    assert "the" not in keywords and "is" not in keywords
    assert len(extract_keywords(" ".join(f"alpha{i}x" for i in range(50)))) == 8
    assert extract_keywords("") == []
    assert all(re.fullmatch(r"\w[\w'-]*\w", k) for k in extract_keywords(SENTENCES[4]))


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        chunk_transcript("a b c", [SegmentIn(0, 1, "a b c")], target_words=300, max_words=250)


def test_text_added_before_and_after_the_segments_is_indexed() -> None:
    text, segments = whisper_like(SENTENCES[:3])
    edited = "Preface added. " + text + " Edited at the end."
    chunks = chunk_transcript(edited, segments)
    check_offsets(edited, chunks)
    assert chunks[0].text.startswith("Preface added.")
    assert chunks[-1].text.endswith("Edited at the end.")
