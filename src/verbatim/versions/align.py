"""Re-aligning edited text to the words it replaces, keeping their times.

As the BBC transcript editor's aligner does: difflib on the token sequences (compared in a
normalised form: case and surrounding punctuation do not make a word "changed"). Unchanged
words keep their times exactly. A run of changed words takes the time span of the old words it
replaces, shared out in proportion to the new words' lengths; inserted words share the gap
between their neighbours. Start times never go backwards and no word ends after the next starts.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

Word = dict[str, Any]  # {"start", "end", "word", "probability"} as segments store them

_EDGE_PUNCTUATION = re.compile(r"^[^\w]+|[^\w]+$")


def tokens(text: str) -> list[str]:
    return text.split()


def normalise(token: str) -> str:
    return _EDGE_PUNCTUATION.sub("", token.strip()).casefold()


def _spread(texts: Sequence[str], start: float, end: float) -> list[tuple[float, float]]:
    """Times for `texts` filling [start, end], each a share proportional to its length."""
    end = max(end, start)
    weights = [max(len(t), 1) for t in texts]
    total = sum(weights)
    times: list[tuple[float, float]] = []
    cursor = start
    for i, weight in enumerate(weights):
        stop = end if i == len(weights) - 1 else cursor + (end - start) * weight / total
        times.append((round(cursor, 3), round(stop, 3)))
        cursor = stop
    return times


def align(old: Sequence[Word], text: str, start: float, end: float) -> list[Word]:
    """The words of `text`, timed from `old` (the words it replaces) within [start, end]."""
    new_tokens = tokens(text)
    # Stored words keep the engine's leading space (" word"): new ones follow the same form.
    prefix = " " if any(str(w.get("word", "")).startswith(" ") for w in old) else ""
    matcher = difflib.SequenceMatcher(
        None,
        [normalise(str(w.get("word", ""))) for w in old],
        [normalise(t) for t in new_tokens],
        autojunk=False,
    )
    result: list[Word] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "delete":
            continue
        if op == "equal":
            for old_word, token in zip(old[i1:i2], new_tokens[j1:j2], strict=True):
                result.append({**old_word, "word": prefix + token})
            continue
        # replace or insert: bounded by the neighbours, so times stay in order.
        before = float(result[-1]["end"]) if result else start
        after = float(old[i2]["start"]) if i2 < len(old) else end
        if op == "replace":
            span_start = max(float(old[i1]["start"]), before)
            span_end = min(float(old[i2 - 1]["end"]), after)
        else:
            span_start, span_end = before, after
        span_start = min(span_start, after)
        for token, (w_start, w_end) in zip(
            new_tokens[j1:j2], _spread(new_tokens[j1:j2], span_start, span_end), strict=True
        ):
            result.append(
                {"start": w_start, "end": w_end, "word": prefix + token, "probability": None}
            )
    return result


def unchanged_indices(old: Sequence[Word], new: Sequence[Word]) -> list[tuple[int, int]]:
    """Pairs (old index, new index) of the words an alignment kept (for tests and diffs)."""
    matcher = difflib.SequenceMatcher(
        None,
        [normalise(str(w.get("word", ""))) for w in old],
        [normalise(str(w.get("word", ""))) for w in new],
        autojunk=False,
    )
    pairs: list[tuple[int, int]] = []
    for block in matcher.get_matching_blocks():
        pairs += [(block.a + k, block.b + k) for k in range(block.size)]
    return pairs
