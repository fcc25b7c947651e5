"""Highlights of a hit: matched words (from ts_headline) or the sentence closest in meaning."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from verbatim.search.query import MARK_START, MARK_STOP

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


def word_spans(text: str, headline: str | None) -> list[tuple[int, int]]:
    """Offsets in `text` of the words ts_headline marked.

    ts_headline (HighlightAll) returns the document with markers around matched words; with the
    markers removed it is the text itself. When it is not (a parser that rewrote something),
    no highlight is better than a misplaced one.
    """
    if not headline or MARK_START not in headline:
        return []
    spans: list[tuple[int, int]] = []
    plain: list[str] = []
    pos = 0
    start = -1
    for ch in headline:
        if ch == MARK_START:
            start = pos
        elif ch == MARK_STOP:
            if start >= 0 and pos > start:
                spans.append((start, pos))
            start = -1
        else:
            plain.append(ch)
            pos += 1
    if "".join(plain) != text:
        return []
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace trimmed; the whole text if it has one."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(text)))
    out = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            out.append((start, end))
    return out


def best_sentence(
    spans: Sequence[tuple[int, int]], vectors: Sequence[Sequence[float]], query: Sequence[float]
) -> tuple[int, int] | None:
    """The span whose (L2-normalised) vector is closest to the query's."""
    best: tuple[int, int] | None = None
    best_score = float("-inf")
    for span, vector in zip(spans, vectors, strict=True):
        score = sum(a * b for a, b in zip(vector, query, strict=True))
        if score > best_score:
            best, best_score = span, score
    return best


def snippet(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` HTML-escaped, with each span in <mark>...</mark>."""
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(html.escape(text[pos:start], quote=False))
        out.append("<mark>" + html.escape(text[start:end], quote=False) + "</mark>")
        pos = end
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def _norm(token: str) -> str:
    return "".join(ch for ch in token.lower() if ch.isalnum())


def time_at(
    text: str, offset: int, start: float, end: float, words: Sequence[tuple[float, str]]
) -> float:
    """When the word at character `offset` of a chunk's `text` is spoken.

    `words` are (start time, word) of the transcript's words from the chunk's start on, in
    order. The chunk's text is made of those words: its whitespace-separated tokens are matched
    to them (punctuation and case aside), so the token holding `offset` gives its word's time.
    Without word times (or if the text does not line up with them), the time is interpolated
    over the chunk's span by character position.
    """
    tokens: list[tuple[int, str]] = [
        (m.start(), _norm(m.group())) for m in re.finditer(r"\S+", text)
    ]
    tokens = [(pos, tok) for pos, tok in tokens if tok]
    target = next((i for i, (pos, _) in enumerate(tokens) if pos >= offset), None)
    if target is not None and offset < tokens[target][0] and target > 0:
        target -= 1  # offset inside the previous token
    normed = [(t, _norm(w)) for t, w in words]
    normed = [(t, w) for t, w in normed if w]
    if target is not None and normed and tokens:
        # Where the chunk's first tokens begin among the words (a chunk may start mid-segment).
        head = [tok for _, tok in tokens[:3]]
        for i in range(len(normed) - len(head) + 1):
            if [w for _, w in normed[i : i + len(head)]] == head:
                j = i + target
                if j < len(normed) and normed[j][1] == tokens[target][1]:
                    return max(start, min(end, normed[j][0]))
                break
    if not text:
        return start
    return start + (end - start) * max(0, min(offset, len(text))) / len(text)
