"""Multiple alignment of several engines' words: a ROVER-style word transition network.

Hypotheses are added one at a time (progressive alignment, the most confident engine first).
Each is aligned against the network built so far by a dynamic programme over slots: a slot is
one position of the network holding at most one word per engine (or none: that engine said
nothing there). A word matches a slot at no cost when its normalised text equals a word already
in the slot, at cost 1 otherwise; skipping a slot or inserting a new one costs 1. A small time
penalty keeps words from matching a slot far from them in the audio.

The programme runs in a band of +-`window` seconds around each word (every engine's times follow
the same audio), so a 3-hour transcript of 30,000 words costs ~30,000 x (words in the window)
cells, not 30,000^2: about 15 s in pure Python on a busy 2-core machine, for three engines.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

# Apostrophes inside words stay ("don't"); every other punctuation mark goes.
_PUNCT = re.compile(r"[^\w']+|(?<!\w)'|'(?!\w)")


def normalise(word: str) -> str:
    """The form compared between engines: case, punctuation and accents' composition ignored."""
    text = unicodedata.normalize("NFKC", word).casefold().replace("\u2019", "'")
    return _PUNCT.sub("", text)


@dataclass(frozen=True, slots=True)
class Word:
    """One engine's word, as the engines return it (text may carry spaces and punctuation)."""

    text: str
    start: float
    end: float
    confidence: float | None = None
    speaker: str | None = None

    @property
    def key(self) -> str:
        return normalise(self.text)


@dataclass(slots=True)
class Slot:
    """One position of the network: each engine's word there, or None."""

    words: list[Word | None]
    keys: set[str] = field(default_factory=set)
    time: float = 0.0

    def refresh(self) -> None:
        present = [w for w in self.words if w is not None]
        self.keys = {w.key for w in present}
        self.time = sum(w.start for w in present) / len(present) if present else 0.0


# Cost of a match between different words, of a skipped slot and of an inserted word: equal, as
# in Levenshtein, so the network's per-engine edit counts are word error counts.
SUBSTITUTE = 1.0
GAP = 1.0
# Matching a word with a slot more than FAR seconds away costs this much more: enough to prefer
# a gap and a new slot to pairing two unrelated words from different sentences.
FAR = 1.5
FAR_PENALTY = 0.6


def align(hypotheses: Sequence[Sequence[Word]], *, window: float = 10.0) -> list[Slot]:
    """Align every engine's words into one network; slot.words[e] is engine e's word or None.

    Hypotheses keep their order in each slot. Words of an engine keep their order in the
    network, and every word of every engine is in exactly one slot."""
    n_engines = len(hypotheses)
    if n_engines == 0:
        return []
    order = sorted(range(n_engines), key=lambda e: -_mean_confidence(hypotheses[e]))
    first = order[0]
    slots = [_slot(n_engines, first, w) for w in hypotheses[first] if w.key]
    for engine in order[1:]:
        words = [w for w in hypotheses[engine] if w.key]
        slots = _add(slots, words, engine, n_engines, window)
    return slots


def _slot(n_engines: int, engine: int, word: Word) -> Slot:
    words: list[Word | None] = [None] * n_engines
    words[engine] = word
    slot = Slot(words)
    slot.refresh()
    return slot


def _mean_confidence(words: Sequence[Word]) -> float:
    values = [w.confidence for w in words if w.confidence is not None]
    return sum(values) / len(values) if values else 0.0


def _bands(slot_times: list[float], words: Sequence[Word], window: float) -> list[tuple[int, int]]:
    """For each row j (words consumed), the range of slots [lo, hi] the path may be at."""
    n, m = len(slot_times), len(words)
    bands: list[tuple[int, int]] = []
    for j in range(m + 1):
        # Row j sits between word j-1 and word j in time.
        t = words[j].start if j < m else (words[-1].end if m else 0.0)
        lo = bisect.bisect_left(slot_times, t - window)
        hi = bisect.bisect_right(slot_times, t + window)
        bands.append((lo, hi))
    # The path starts at (0, 0), ends at (n, m), and moves right or down: bands must be
    # monotone and overlap from one row to the next.
    los = [b[0] for b in bands]
    his = [b[1] for b in bands]
    los[0], his[m] = 0, n
    for j in range(m - 1, -1, -1):
        los[j] = min(los[j], los[j + 1])
    for j in range(1, m + 1):
        his[j] = max(his[j], his[j - 1])
    for j in range(m):
        his[j] = max(his[j], los[j + 1])
    return [(los[j], max(his[j], los[j])) for j in range(m + 1)]


def _add(
    slots: list[Slot], words: list[Word], engine: int, n_engines: int, window: float
) -> list[Slot]:
    n, m = len(slots), len(words)
    if m == 0:
        return slots
    if n == 0:
        return [_slot(n_engines, engine, w) for w in words]
    times = [s.time for s in slots]
    # Slot times are means of starts; they are sorted up to small jitter, which bisect tolerates.
    sorted_times = sorted(times)
    bands = _bands(sorted_times, words, window)
    inf = float("inf")
    # cost[j][i - lo_j], and the move that reached it: 0 diagonal, 1 skip slot, 2 insert word.
    cost: list[list[float]] = []
    move: list[list[int]] = []
    for j in range(m + 1):
        lo, hi = bands[j]
        row = [inf] * (hi - lo + 1)
        back = [0] * (hi - lo + 1)
        prev_lo, prev_hi = bands[j - 1] if j else (0, -1)
        prev = cost[j - 1] if j else None
        word = words[j - 1] if j else None
        for i in range(lo, hi + 1):
            best, how = (0.0, 0) if (i == 0 and j == 0) else (inf, 0)
            if i > lo and row[i - 1 - lo] + GAP < best:
                best, how = row[i - 1 - lo] + GAP, 1
            if prev is not None and word is not None:
                if prev_lo <= i <= prev_hi and prev[i - prev_lo] + GAP < best:
                    best, how = prev[i - prev_lo] + GAP, 2
                if i > 0 and prev_lo <= i - 1 <= prev_hi:
                    c = prev[i - 1 - prev_lo] + _match_cost(slots[i - 1], word)
                    if c < best:
                        best, how = c, 0
            row[i - lo] = best
            back[i - lo] = how
        cost.append(row)
        move.append(back)
    # Trace back from (n, m).
    i, j = n, m
    steps: list[tuple[int, int, int]] = []
    while i > 0 or j > 0:
        lo = bands[j][0]
        how = move[j][i - lo]
        steps.append((how, i, j))
        if how == 0:
            i, j = i - 1, j - 1
        elif how == 1:
            i -= 1
        else:
            j -= 1
    out: list[Slot] = []
    for how, i, j in reversed(steps):
        if how == 0:
            slot = slots[i - 1]
            slot.words[engine] = words[j - 1]
            slot.refresh()
            out.append(slot)
        elif how == 1:
            out.append(slots[i - 1])
        else:
            out.append(_slot(n_engines, engine, words[j - 1]))
    return out


def _match_cost(slot: Slot, word: Word) -> float:
    cost = 0.0 if word.key in slot.keys else SUBSTITUTE
    if abs(slot.time - word.start) > FAR:
        cost += FAR_PENALTY
    return cost
