"""Put diarization turns onto a transcript: pure functions, no model, no database.

- every word gets the speaker whose turns overlap it most (the nearest turn when none does);
- short flickers inside one speaker's turn are smoothed away;
- segments are split where the speaker changes, only between words (a word is never split);
- labels are renumbered by first appearance: SPEAKER_1 speaks first.

Segments without word timings are labelled as a whole, by overlap.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from verbatim.engines.base import Segment, SpeakerStats, Word

# A run of words shorter than this, between two runs of one other speaker, is a flicker...
MAX_FLICKER_S = 0.5
# ...unless pauses at least this long stand on both sides of it: that is a real interjection.
INTERJECTION_PAUSE_S = 0.3


class TurnLike(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def label(self) -> str: ...


class _Turns:
    """Turns sorted by start, for overlap queries in O(log n + overlapping turns)."""

    def __init__(self, turns: Sequence[TurnLike]) -> None:
        ordered = sorted((t for t in turns if t.end > t.start), key=lambda t: (t.start, t.end))
        self.starts = [t.start for t in ordered]
        self.ends = [t.end for t in ordered]
        self.labels = [t.label for t in ordered]
        self.longest = max((t.end - t.start for t in ordered), default=0.0)

    def __bool__(self) -> bool:
        return bool(self.starts)

    def label_for(self, start: float, end: float) -> str | None:
        """The label overlapping [start, end] most; the nearest turn's when none overlaps."""
        if not self.starts:
            return None
        overlap: dict[str, float] = {}
        hi = bisect.bisect_left(self.starts, end)  # turns starting before the span ends
        lo = bisect.bisect_left(self.starts, start - self.longest)
        for i in range(lo, hi):
            amount = min(end, self.ends[i]) - max(start, self.starts[i])
            if amount > 0:
                overlap[self.labels[i]] = overlap.get(self.labels[i], 0.0) + amount
        if overlap:
            # Ties go to the label seen first (dicts keep insertion order; turns are ordered).
            return max(overlap, key=lambda k: overlap[k])
        # A point in time, or a span in a gap between turns: the nearest turn.
        middle = (start + end) / 2
        best, best_distance = None, float("inf")
        for i in range(max(0, hi - 1 - 64), min(len(self.starts), hi + 1)):
            distance = max(self.starts[i] - middle, middle - self.ends[i], 0.0)
            if distance < best_distance:
                best, best_distance = self.labels[i], distance
        if best is None:  # pragma: no cover - at least one turn exists
            return self.labels[0]
        return best


def word_labels(words: Sequence[Word], turns: Sequence[TurnLike]) -> list[str | None]:
    """Each word's speaker: the label with the most overlap (no turns: None)."""
    index = _Turns(turns)
    return [index.label_for(w.start, w.end) for w in words]


def smooth(
    words: Sequence[Word],
    labels: Sequence[str | None],
    *,
    max_flicker_s: float = MAX_FLICKER_S,
    interjection_pause_s: float = INTERJECTION_PAUSE_S,
) -> list[str | None]:
    """Relabel short runs sandwiched between two runs of the same other speaker.

    A run shorter than `max_flicker_s` (first word start to last word end) takes its
    neighbours' label, unless it is set apart by pauses of `interjection_pause_s` on both sides
    ("Yes." between two sentences of the other speaker is kept).
    """
    result = list(labels)
    changed = True
    while changed:  # merging one flicker can make its neighbours one run: look again
        changed = False
        runs = _runs(result)
        for k in range(1, len(runs) - 1):
            (a0, a1), (b0, b1), (c0, _) = runs[k - 1], runs[k], runs[k + 1]
            before, label, after = result[a0], result[b0], result[c0]
            if before is None or before != after or label == before:
                continue
            span = words[b1 - 1].end - words[b0].start
            if span >= max_flicker_s:
                continue
            pause_before = words[b0].start - words[a1 - 1].end
            pause_after = words[c0].start - words[b1 - 1].end
            if pause_before >= interjection_pause_s and pause_after >= interjection_pause_s:
                continue
            for i in range(b0, b1):
                result[i] = before
            changed = True
            break
    return result


def _runs(labels: Sequence[str | None]) -> list[tuple[int, int]]:
    """[start, end) index ranges of equal consecutive labels."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i))
            start = i
    return runs


def split_segments(
    segments: Sequence[Segment], turns: Sequence[TurnLike], *, smooth_flickers: bool = True
) -> list[Segment]:
    """The segments with a speaker each, split where the speaker changes between words."""
    index = _Turns(turns)
    if not index:
        return list(segments)
    words = [w for seg in segments for w in seg.words]
    labels = [index.label_for(w.start, w.end) for w in words]
    if smooth_flickers:
        labels = smooth(words, labels)
    out: list[Segment] = []
    position = 0
    for seg in segments:
        if not seg.words:
            out.append(replace(seg, speaker=index.label_for(seg.start, seg.end)))
            continue
        seg_labels = labels[position : position + len(seg.words)]
        position += len(seg.words)
        pieces = _runs(seg_labels)
        for n, (i, j) in enumerate(pieces):
            piece = seg.words[i:j]
            out.append(
                replace(
                    seg,
                    start=seg.start if n == 0 else piece[0].start,
                    end=seg.end if n == len(pieces) - 1 else piece[-1].end,
                    text=seg.text if len(pieces) == 1 else "".join(w.word for w in piece).strip(),
                    words=tuple(piece),
                    speaker=seg_labels[i],
                )
            )
    return out


def renumber(
    segments: Sequence[Segment], turns: Sequence[TurnLike]
) -> tuple[list[Segment], dict[str, str]]:
    """Labels in order of first appearance in the transcript: SPEAKER_1, SPEAKER_2, ...

    Speakers who say no word are dropped (a cough, a noise cluster). Returns the relabelled
    segments and the map old label -> new label.
    """
    mapping: dict[str, str] = {}
    for seg in segments:
        if seg.speaker is not None and seg.speaker not in mapping:
            mapping[seg.speaker] = f"SPEAKER_{len(mapping) + 1}"
    relabelled = [
        replace(seg, speaker=mapping[seg.speaker]) if seg.speaker is not None else seg
        for seg in segments
    ]
    return relabelled, mapping


def speaker_stats(
    segments: Sequence[Segment],
    turns: Sequence[TurnLike],
    mapping: Mapping[str, str],
    centroids: Mapping[str, Sequence[float]] | None = None,
) -> list[SpeakerStats]:
    """One entry per speaker with words, in label order: talk time from the turns (overlapping
    turns of one speaker counted once), words from the labelled segments."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for t in turns:
        if t.label in mapping and t.end > t.start:
            spans.setdefault(mapping[t.label], []).append((t.start, t.end))
    counts: dict[str, int] = {}
    for seg in segments:
        if seg.speaker is not None:
            counts[seg.speaker] = counts.get(seg.speaker, 0) + (
                len(seg.words) or len(seg.text.split())
            )
    stats = []
    for old, new in mapping.items():
        vector = (centroids or {}).get(old)
        stats.append(
            SpeakerStats(
                label=new,
                talk_time=round(_union_length(spans.get(new, [])), 3),
                word_count=counts.get(new, 0),
                centroid=tuple(float(x) for x in vector) if vector is not None else None,
            )
        )
    return sorted(stats, key=lambda s: int(s.label.rsplit("_", 1)[1]))


def _union_length(spans: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(spans):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def label_transcript(
    segments: Sequence[Segment],
    turns: Sequence[TurnLike],
    centroids: Mapping[str, Sequence[float]] | None = None,
) -> tuple[list[Segment], list[SpeakerStats]]:
    """Everything above in order: split, smooth, renumber, count."""
    labelled = split_segments(segments, turns)
    labelled, mapping = renumber(labelled, turns)
    return labelled, speaker_stats(labelled, turns, mapping, centroids)
