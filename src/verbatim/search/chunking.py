"""Cut a transcript into search chunks: about 100-250 words, ending at sentence or segment
boundaries, with a small overlap, timed from the words, with offsets into the transcript text.

Pure functions, no database: `chunk_transcript(text, segments)` gives the chunks of one
transcription.

How it works:
1. Each segment is found in `text` (the transcript is the segments' texts joined, so the search
   is sequential and exact); a segment that is not there (a text edited by hand) keeps its own
   text and the offsets of where it would be.
2. Segments are split into sentences (`.`, `!`, `?`, `…` and the CJK full stops); a sentence
   longer than `max_words` is cut at word boundaries into pieces of `target_words`.
3. Units are packed in order into chunks: a chunk is closed once it reaches `target_words` at
   the end of a unit, before it would pass `max_words`, and always at a change of speaker (in
   dialogue mode a chunk never spans two speakers' turns, and carries its speaker). A last
   chunk under `min_words` joins the one before it when that stays within `max_words`.
4. The next chunk starts with the closing sentence of the previous one when that sentence is at
   most `overlap_words` long (the overlap), never across a change of speaker.
5. Times come from word timestamps when there are any (the first and last word inside the
   unit), otherwise they are interpolated over the segment by character position.

Words are counted as whitespace-separated runs, except that each CJK ideograph or kana counts as
one (those scripts write no spaces and the embedding tokenizer splits them per character).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TARGET_WORDS = 160
MAX_WORDS = 250
MIN_WORDS = 100
OVERLAP_WORDS = 40
MAX_KEYWORDS = 8

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
# The end of a sentence: terminal punctuation, closing quotes or brackets, then a space or the
# end; CJK full stops need no space after them.
_SENTENCE_END = re.compile(
    "(?:[.!?\u2026]+[\"'\u201d\u2019\u00bb)\\]]*(?=\\s|$))"  # . ! ? … and closing quotes
    "|(?:[\u3002\uff01\uff1f]+[\u300d\u300f\u201d\u2019)]*)"  # CJK full stops, ! and ?
)
_KEYWORD = re.compile("[^\\W\\d_][\\w'\u2019-]*[^\\W_]|[^\\W\\d_]{3,}")

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each even few for from further get got had hadn't has
    hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his
    how how's however i i'd i'll i'm i've if in into is isn't it it's its itself just know
    let's like me more most much must mustn't my myself no nor not now of off on once one only
    or other ought our ours ourselves out over own really right same say said she she'd she'll
    she's should shouldn't so some such than that that's the their theirs them themselves then
    there there's these they they'd they'll they're they've thing things think this those
    through to too under until up upon us very was wasn't way we we'd we'll we're we've well
    were weren't what what's when when's where where's which while who who's whom why why's
    will with won't would wouldn't yeah yes you you'd you'll you're you've your yours yourself
    yourselves okay oh uh um gonna wanna going go also actually
    """.split()  # noqa: SIM905 - a word list reads better as text
)


@dataclass(frozen=True)
class SegmentIn:
    """What the chunker needs of a segment (rows of `segment`, in order)."""

    start: float
    end: float
    text: str
    speaker: str | None = None
    # [{"start", "end", "word", ...}] as the engine stored them; may be empty.
    words: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start_time: float
    end_time: float
    start_char_pos: int  # [start_char_pos, end_char_pos) of the transcript text
    end_char_pos: int
    speaker: str | None
    word_count: int
    keywords: list[str] = field(default_factory=list)


@dataclass
class _Unit:
    """A sentence, or a piece of one: the smallest thing a chunk is made of."""

    start_char: int
    end_char: int
    text: str
    start_time: float
    end_time: float
    speaker: str | None
    words: int


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def chunk_transcript(
    text: str | None,
    segments: Sequence[SegmentIn],
    *,
    target_words: int = TARGET_WORDS,
    max_words: int = MAX_WORDS,
    min_words: int = MIN_WORDS,
    overlap_words: int = OVERLAP_WORDS,
) -> list[Chunk]:
    """The chunks of one transcript, in order (an empty transcript has none)."""
    if not 0 < target_words <= max_words:
        raise ValueError("need 0 < target_words <= max_words")
    units = _units(text or "", segments, target_words, max_words)
    groups = _pack(units, target_words, max_words, min(min_words, target_words), overlap_words)
    full = text or ""
    chunks = []
    for index, group in enumerate(groups):
        first, last = group[0], group[-1]
        if _contiguous(group) and full[first.start_char : last.end_char].strip():
            chunk_text = full[first.start_char : last.end_char]
        else:  # text edited away from its segments: the units' own text
            chunk_text = " ".join(u.text for u in group)
        chunks.append(
            Chunk(
                index=index,
                text=chunk_text,
                start_time=round(first.start_time, 3),
                end_time=round(max(last.end_time, first.start_time), 3),
                start_char_pos=first.start_char,
                end_char_pos=max(last.end_char, first.start_char),
                speaker=first.speaker,
                word_count=sum(u.words for u in group),
                keywords=extract_keywords(chunk_text),
            )
        )
    return chunks


def _contiguous(group: list[_Unit]) -> bool:
    return all(a.end_char <= b.start_char for a, b in itertools.pairwise(group))


def _units(
    text: str, segments: Sequence[SegmentIn], target_words: int, max_words: int
) -> list[_Unit]:
    units: list[_Unit] = []
    cursor = 0
    for seg in segments:
        stripped = seg.text.strip()
        if not stripped:
            continue
        found = text.find(stripped, cursor)
        if found < 0:
            # Not in the transcript text (edited by hand): the segment stands for the text
            # between the segments found around it (set below), timed by the segment.
            units.append(
                _Unit(
                    cursor,
                    -1,
                    stripped,
                    seg.start,
                    max(seg.end, seg.start),
                    seg.speaker,
                    count_words(stripped),
                )
            )
            continue
        seg_start, seg_end = found, found + len(stripped)
        cursor = seg_end
        timer = _SegmentTimer(text, seg, seg_start, seg_end)
        for s_start, s_end in _sentences(text, seg_start, seg_end):
            for p_start, p_end, n_words in _pieces(text, s_start, s_end, target_words, max_words):
                t_start, t_end = timer.span(p_start, p_end)
                units.append(
                    _Unit(p_start, p_end, text[p_start:p_end], t_start, t_end, seg.speaker, n_words)
                )
    next_start = len(text)
    for unit in reversed(units):
        if unit.end_char < 0:
            start, end = unit.start_char, max(next_start, unit.start_char)
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            unit.start_char, unit.end_char = start, end
            if start < end:
                unit.text = text[start:end]
                unit.words = count_words(unit.text)
        next_start = unit.start_char
    units = [u for u in units if u.text.strip()]
    if units:
        # Text before the first segment or after the last one (added by an edit) goes with it.
        first, last = units[0], units[-1]
        lead = len(text) - len(text.lstrip())
        if lead < first.start_char and text[lead : first.start_char].strip():
            first.start_char = lead
        tail = len(text.rstrip())
        if tail > last.end_char and text[last.end_char : tail].strip():
            last.end_char = tail
        for unit in {id(first): first, id(last): last}.values():
            unit.text = text[unit.start_char : unit.end_char]
            unit.words = count_words(unit.text)
    return units


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside text[start:end], without surrounding whitespace."""
    spans = []
    begin = start
    for match in _SENTENCE_END.finditer(text, start, end):
        spans.append((begin, match.end()))
        begin = match.end()
    spans.append((begin, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def _pieces(
    text: str, start: int, end: int, target_words: int, max_words: int
) -> list[tuple[int, int, int]]:
    """A sentence as one piece, or, past max_words, cut at words into pieces of target_words."""
    words = list(_WORD.finditer(text, start, end))
    if len(words) <= max_words:
        return [(start, end, len(words))]
    pieces = []
    for i in range(0, len(words), target_words):
        group = words[i : i + target_words]
        pieces.append((group[0].start(), group[-1].end(), len(group)))
    return pieces


class _SegmentTimer:
    """Times of character spans inside one segment: from its words, else interpolated."""

    def __init__(self, text: str, seg: SegmentIn, seg_start: int, seg_end: int) -> None:
        self.seg_start, self.seg_end = seg_start, seg_end
        self.start, self.end = seg.start, max(seg.end, seg.start)
        self.words: list[tuple[int, int, float, float]] = []
        cursor = seg_start
        for word in seg.words:
            token = str(word.get("word", "")).strip()
            w_start, w_end = word.get("start"), word.get("end")
            if not token or w_start is None or w_end is None:
                continue
            at = text.find(token, cursor, seg_end)
            if at < 0:
                continue
            cursor = at + len(token)
            self.words.append((at, cursor, float(w_start), float(w_end)))

    def _interpolate(self, pos: int) -> float:
        width = self.seg_end - self.seg_start
        share = (pos - self.seg_start) / width if width > 0 else 0.0
        return self.start + (self.end - self.start) * min(1.0, max(0.0, share))

    def span(self, start: int, end: int) -> tuple[float, float]:
        inside = [w for w in self.words if w[0] < end and w[1] > start]
        if inside:
            t_start = min(w[2] for w in inside)
            t_end = max(w[3] for w in inside)
        else:
            t_start, t_end = self._interpolate(start), self._interpolate(end)
        t_start = min(max(t_start, self.start), self.end)
        t_end = min(max(t_end, t_start), self.end)
        return t_start, t_end


def _pack(
    units: list[_Unit], target_words: int, max_words: int, min_words: int, overlap_words: int
) -> list[list[_Unit]]:
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    fresh = 0  # words in `current` that are not overlap from the previous chunk
    lead = 0  # units at the start of `current` that are overlap

    def close(with_overlap: bool) -> None:
        nonlocal current, size, fresh, lead
        if fresh == 0:  # only overlap: nothing new to index
            current, size, lead = [], 0, 0
            return
        groups.append(current)
        last = current[-1]
        if with_overlap and len(current) > 1 and last.words <= overlap_words:
            current, size, lead = [last], last.words, 1
        else:
            current, size, lead = [], 0, 0
        fresh = 0

    for unit in units:
        if current and unit.speaker != current[-1].speaker:
            close(with_overlap=False)
        if current and size + unit.words > max_words:
            if fresh == 0:  # the overlap alone does not leave room: drop it
                current, size, lead = [], 0, 0
            else:
                close(with_overlap=True)
                if current and size + unit.words > max_words:
                    current, size, lead = [], 0, 0
        current.append(unit)
        size += unit.words
        fresh += unit.words
        if size >= target_words:
            close(with_overlap=True)
    if current and fresh:
        previous = groups[-1] if groups else None
        if (
            previous is not None
            and size < min_words
            and previous[-1].speaker == current[-1].speaker
            and sum(u.words for u in previous) + fresh <= max_words
        ):
            previous.extend(current[lead:])  # a short tail joins the chunk before it
        else:
            groups.append(current)
    return groups


def extract_keywords(text: str, limit: int = MAX_KEYWORDS) -> list[str]:
    """The chunk's most frequent content words, lower-cased: words of 3+ letters that are not
    stop words (a short English list) or numbers, ranked by count, then by first appearance."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for position, match in enumerate(_KEYWORD.finditer(text)):
        word = match.group(0).lower().replace("\u2019", "'").strip("'-")
        if len(word) < 3 or word in STOPWORDS:
            continue
        counts[word] += 1
        first.setdefault(word, position)
    ranked = sorted(counts, key=lambda w: (-counts[w], first[w]))
    return ranked[:limit]
