"""Render a finished transcript into downloadable formats (txt, srt, vtt, json, csv, tsv, docx,
and the agent JSON of `agent.py`).

Pure (stdlib, orjson, and python-docx for DOCX): callers map their ORM rows onto the small frozen
dataclasses below, so this module can be used from API handlers, workers and tests without a
database. Segments carry the speaker's name as it should be shown; `ExportDocument.speakers`
lists them with talk time (dialogue mode).
"""

import csv
import html
import io
import math
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from operator import itemgetter
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import orjson

FORMATS: tuple[str, ...] = ("txt", "srt", "vtt", "json", "csv", "tsv", "docx", "agent")
BINARY_FORMATS: tuple[str, ...] = ("docx",)  # Rendered.content is bytes
# The formats that show word timings: only their rows need the words fetched and decoded.
WORD_FORMATS = frozenset({"srt", "vtt", "json"})

# Subtitle layout limits, following common broadcast/streaming style guides.
MAX_LINE_CHARS = 42
MAX_CUE_SECONDS = 7.0
MIN_CUE_MS = 100
# Longer speaker names are shortened in SRT so the "Name: " prefix never crowds out the text.
MAX_LABEL_CHARS = 20

# Scripts written without spaces between words: their word tokens are joined directly.
_SPACELESS_LANGUAGES = frozenset({"zh", "ja", "yue", "th", "lo", "km", "my"})

_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILENAME_STEM = 100
FALLBACK_STEM = "transcript"


class ExportWord(NamedTuple):
    """Immutable like the other records; a named tuple because an export makes tens of
    thousands of them (a frozen dataclass costs several times more to construct)."""

    start: float
    end: float
    word: str
    probability: float | None = None


@dataclass(frozen=True)
class ExportSegment:
    start: float
    end: float
    text: str
    speaker: str | None = None
    confidence: float | None = None
    words: tuple[ExportWord, ...] = ()


@dataclass(frozen=True)
class ExportSpeaker:
    label: str  # SPEAKER_1, ...
    name: str  # display name, or the label while unnamed
    talk_time: float  # seconds
    word_count: int = 0


@dataclass(frozen=True)
class ExportDocument:
    id: str  # transcription id
    title: str  # original file name of the audio
    language: str | None
    duration: float | None  # audio seconds
    model: str | None
    text: str
    segments: tuple[ExportSegment, ...]
    speakers: tuple[ExportSpeaker, ...] = ()
    confidence: float | None = None  # the transcription's mean word confidence
    topics: tuple[tuple[str, str], ...] = ()  # (name, accepted|suggested)
    summary: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rendered:
    content: str | bytes  # bytes for docx
    media_type: str
    filename: str  # e.g. "meeting.srt"


def render(doc: ExportDocument, fmt: str) -> Rendered:
    """Render ``doc`` as ``fmt`` (one of FORMATS); raises ValueError for anything else."""
    if fmt == "docx":
        return Rendered(_render_docx(doc), DOCX_MEDIA_TYPE, f"{_safe_stem(doc.title)}.docx")
    if fmt == "agent":
        from verbatim.transcriptions import agent

        return Rendered(
            agent.render(doc), "application/json", f"{_safe_stem(doc.title)}.agent.json"
        )
    try:
        renderer, media_type = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}"
        ) from None
    return Rendered(renderer(doc), media_type, f"{_safe_stem(doc.title)}.{fmt}")


# (start_ms, end_ms, lines, speaker): tuples, since an export makes thousands of cues.
_CueRow = tuple[int, int, tuple[str, ...], str | None]
# One segment as the cue builder reads it: start, end, text, speaker, and the word
# timings as three parallel lists (start, end, word), empty without word timings.
_SegmentRow = tuple[float, float, str, str | None, Sequence[float], Sequence[float], Sequence[str]]
# A segment as the export query returns it: start, end, text, speaker, confidence, and the
# words as JSON text (None for the formats that do not show words).
SegmentRow = tuple[float, float, str, str | None, float | None, str | bytes | None]


def render_rows(header: ExportDocument, rows: Sequence[SegmentRow], fmt: str) -> Rendered:
    """``render`` of ``header`` with ``rows`` as its segments. SRT and VTT are laid out
    straight from the rows (no object per word or segment: issue 15); the other formats
    get the document built first."""
    if fmt in ("srt", "vtt"):
        cues = _cues_of_rows(_word_lists(rows), header.language, with_labels=fmt == "srt")
        content = _srt(cues) if fmt == "srt" else _vtt(cues)
        return Rendered(content, _RENDERERS[fmt][1], f"{_safe_stem(header.title)}.{fmt}")
    with_words = fmt in WORD_FORMATS
    segments = tuple(
        ExportSegment(
            start=start,
            end=end,
            text=text,
            speaker=speaker,
            confidence=confidence,
            words=tuple(
                ExportWord(w["start"], w["end"], w["word"], w.get("probability"))
                for w in orjson.loads(words or "[]")
            )
            if with_words
            else (),
        )
        for start, end, text, speaker, confidence, words in rows
    )
    return render(replace(header, segments=segments), fmt)


_START, _END, _WORD = itemgetter("start"), itemgetter("end"), itemgetter("word")


def _word_lists(rows: Iterable[SegmentRow]) -> Iterator[_SegmentRow]:
    loads = orjson.loads
    for start, end, text, speaker, _, words in rows:
        decoded: list[dict[str, Any]] = loads(words) if words else []
        yield (
            start,
            end,
            text,
            speaker,
            list(map(_START, decoded)),
            list(map(_END, decoded)),
            list(map(_WORD, decoded)),
        )


def _safe_stem(title: str) -> str:
    """A file-name stem made only of [A-Za-z0-9._-], safe for Content-Disposition and disks."""
    # Uploaded names may carry a client path with either separator; keep the last part only.
    name = re.split(r"[\\/]", title)[-1]
    stem = PurePosixPath(name).stem if name else ""
    # Drop accents rather than replacing them ("Réunion" -> "Reunion").
    decomposed = unicodedata.normalize("NFKD", stem)
    stem = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    stem = re.sub(r"_+", "_", _UNSAFE_FILENAME_CHARS.sub("_", stem))
    # Leading dots would hide the file, leading dashes read as CLI options.
    stem = stem.strip("._-")[:MAX_FILENAME_STEM].rstrip("._-")
    return stem or FALLBACK_STEM


# --- plain text -------------------------------------------------------------------------------


def _render_txt(doc: ExportDocument) -> str:
    if any(seg.speaker for seg in doc.segments):
        # Dialogue: one "Name: text" line per turn (consecutive segments of one speaker).
        return "".join(f"{line}\n" for line in (_txt_line(turn) for turn in _turns(doc)) if line)
    lines = [_txt_line(seg) for seg in doc.segments]
    if not doc.segments and doc.text.strip():
        # A transcript stored without segments still has its text worth exporting.
        lines = [doc.text.strip()]
    return "".join(f"{line}\n" for line in lines if line)


def _txt_line(seg: ExportSegment) -> str:
    # Collapsing whitespace keeps the "one segment per line" promise for multi-line text.
    text = " ".join(seg.text.split())
    label = _clean_label(seg.speaker)
    return f"{label}: {text}" if text and label else text


def _turns(doc: ExportDocument) -> list[ExportSegment]:
    """Consecutive segments of one speaker joined into one (text and time span); segments
    without a speaker stay one each."""
    turns: list[ExportSegment] = []
    for seg in doc.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        previous = turns[-1] if turns else None
        label = _clean_label(seg.speaker)
        if previous is not None and label and _clean_label(previous.speaker) == label:
            turns[-1] = replace(previous, end=seg.end, text=f"{previous.text} {text}")
        else:
            turns.append(replace(seg, text=text, words=()))
    return turns


# --- JSON and CSV -----------------------------------------------------------------------------


def _render_json(doc: ExportDocument) -> str:
    payload = {
        "id": doc.id,
        "title": doc.title,
        "language": doc.language,
        "duration": _num(doc.duration),
        "model": doc.model,
        "text": doc.text,
        "speakers": [
            {
                "label": sp.label,
                "name": sp.name,
                "talk_time": _num(sp.talk_time),
                "word_count": sp.word_count,
            }
            for sp in doc.speakers
        ],
        "segments": [_segment_json(index, seg) for index, seg in enumerate(doc.segments)],
    }
    # orjson: the same indented JSON as the standard library, ~10x faster on 30,000 words.
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n"


def _segment_json(index: int, seg: ExportSegment) -> dict[str, object]:
    return {
        "id": index,
        "start": _num(seg.start),
        "end": _num(seg.end),
        "text": seg.text,
        "speaker": seg.speaker,
        "confidence": _num(seg.confidence),
        "words": [
            {
                "start": _num(w.start),
                "end": _num(w.end),
                "word": w.word,
                "probability": _num(w.probability),
            }
            for w in seg.words
        ],
    }


def _num(value: float | None) -> float | None:
    # JSON has no NaN/Infinity; such values carry no information, so they become null.
    if value is None or not math.isfinite(value):
        return None
    return round(value, 3)


def _render_csv(doc: ExportDocument) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # default dialect: RFC 4180 quoting and CRLF row ends
    writer.writerow(["start", "end", "speaker", "text", "confidence"])
    for seg in doc.segments:
        confidence = "" if seg.confidence is None else f"{seg.confidence:.3f}"
        writer.writerow(
            [f"{seg.start:.3f}", f"{seg.end:.3f}", seg.speaker or "", seg.text.strip(), confidence]
        )
    return buffer.getvalue()


def _render_tsv(doc: ExportDocument) -> str:
    """Whisper's TSV (start and end in integer milliseconds, then text), with a speaker column;
    tabs and line breaks inside text become spaces so every row has four fields."""
    rows = ["start\tend\tspeaker\ttext"]
    for seg in doc.segments:
        text = " ".join(seg.text.split())
        speaker = " ".join((seg.speaker or "").split())
        rows.append(f"{_to_ms(seg.start)}\t{_to_ms(seg.end)}\t{speaker}\t{text}")
    return "\n".join(rows) + "\n"


# --- subtitles: cue building ------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: a frozen init costs 4x, and 30,000 are made per export
class _Token:
    """A unit that is never split across lines or cues: a word, or a piece of one."""

    start: float
    end: float
    text: str
    sep: str  # put before this token when it follows another on the same line


# --- subtitles: the fast cue builder ----------------------------------------------------------
#
# Issue 15: a 30,000-word SRT spent 200 ms of CPU making a token object per word, a cue
# object per cue and a copy of each while sequencing. The common segment (word times in
# order, words that spell the text, no word wider than a line) is laid out here from plain
# lists and prefix widths; any other segment goes through the token functions below, which
# stay the reference (tests/transcriptions/test_export_golden.py pins the bytes of both).


def _build_cues(doc: ExportDocument, *, with_labels: bool) -> list[_CueRow]:
    """Split segments into readable cues, then make their timings sequential.

    ``with_labels`` writes "Speaker: " into the text (SRT); VTT carries the speaker in a
    voice tag instead, so the name does not take up line width there.
    """
    rows = (
        (
            seg.start,
            seg.end,
            seg.text,
            seg.speaker,
            [w.start for w in seg.words],
            [w.end for w in seg.words],
            [w.word for w in seg.words],
        )
        for seg in doc.segments
    )
    return _cues_of_rows(rows, doc.language, with_labels=with_labels)


def _cues_of_rows(
    rows: Iterable[_SegmentRow], language: str | None, *, with_labels: bool
) -> list[_CueRow]:
    word_sep = _word_separator(language)
    labels: dict[str | None, tuple[str | None, str | None]] = {}
    cues: list[_CueRow] = []
    add = cues.append
    for start, end, text, raw_speaker, w_starts, w_ends, w_texts in rows:
        try:
            speaker, label = labels[raw_speaker]
        except KeyError:
            speaker = _clean_label(raw_speaker)
            label = _shorten(speaker) if speaker and with_labels else None
            labels[raw_speaker] = (speaker, label)
        plain = _plain_tokens(text, start, end, w_starts, w_ends, w_texts, word_sep)
        if plain is None:
            # The rare segment: the reference path, token by token.
            seg = ExportSegment(
                start,
                end,
                text,
                words=tuple(map(ExportWord, w_starts, w_ends, w_texts)),
            )
            for chunk in _chunk_fast(_segment_tokens(seg, word_sep), label):
                lines = _layout(_labelled(chunk, label))
                add((_to_ms(chunk[0].start), _to_ms(chunk[-1].end), lines, speaker))
            continue
        t_starts, t_ends, t_texts, sep = plain
        if not t_texts:
            continue
        sep_len = len(sep)
        offsets = list(accumulate(map(len, t_texts), initial=0))
        if sep_len:
            offsets = [o + i for i, o in enumerate(offsets)]  # each token's sep counts
        extra = len(label) + 2 if label else 0  # "Name: " in front of the first line
        for a, b in _bounds_in_order(t_starts, t_ends, offsets, sep_len, extra):
            lines = _lines(t_texts, offsets, a, b, sep, label)
            add((_to_ms(t_starts[a]), _to_ms(t_ends[b - 1]), lines, speaker))
    return _sequence_rows(cues)


def _plain_tokens(
    text: str,
    start: float,
    end: float,
    w_starts: Sequence[float],
    w_ends: Sequence[float],
    w_texts: Sequence[str],
    word_sep: str,
) -> tuple[Sequence[float], Sequence[float], list[str], str] | None:
    """The segment's tokens as lists (starts, ends, texts) and their one separator; None when
    the segment needs the reference path (times out of order, a token wider than a line)."""
    texts: list[str] = [w.strip() for w in w_texts]
    if len(" ".join(texts).split()) != len(texts) or "" in texts:
        # Blank words, or whitespace inside a word: normalise word by word.
        texts = [" ".join(w.split()) for w in w_texts]
        if "" in texts:  # blank words carry nothing: drop them
            keep = [i for i, t in enumerate(texts) if t]
            w_starts = [w_starts[i] for i in keep]
            w_ends = [w_ends[i] for i in keep]
            texts = [texts[i] for i in keep]
    squeezed = "".join(text.split())
    if texts and "".join("".join(texts).split()) == squeezed:
        starts, ends, sep = w_starts, w_ends, word_sep
    else:
        # No (current) word timings: the text's words share the time by character count.
        pieces = text.split()
        if not pieces:
            return [], [], [], " "
        if max(map(len, pieces)) > MAX_LINE_CHARS:
            return None
        spread = _spread(pieces, start, end, " ", " ")
        return [t.start for t in spread], [t.end for t in spread], pieces, " "
    if max(map(len, texts)) > MAX_LINE_CHARS:
        return None
    # Times in order make every sub-run of a fitting run fit, which the fast chunker needs.
    # (NaN and infinite times go there too: a sum catches them, sorting does not.)
    if (
        sorted(starts) != starts
        or sorted(ends) != ends
        or not math.isfinite(sum(starts) + sum(ends))
    ):
        return None
    return starts, ends, texts, sep


def _bounds_in_order(
    starts: Sequence[float], ends: Sequence[float], offsets: list[int], sep: int, extra: int
) -> list[tuple[int, int]]:
    """`_chunk_fast`'s cues as (first, past-the-end) index pairs, for tokens whose start and
    end times are both in order and which share one separator length ``sep``.

    With times in order every run inside a fitting run fits, so where a cue can end from a
    start, and where it can start for an end, are binary searches. The fewest cues, K, come
    from jumping as far as a cue reaches; only the ends that can still lead to the last
    token in K cues get a raggedness (`_chunk_fast` computes one for every token).
    """
    n = len(starts)
    line = MAX_LINE_CHARS
    two_lines = 2 * line + 1
    max_s = MAX_CUE_SECONDS

    def fits(a: int, b: int) -> bool:  # `_fits` of tokens a..b-1, from prefix widths
        if b - a <= 1:
            return True  # a lone token always makes a cue
        if ends[b - 1] - starts[a] > max_s:
            return False
        width = offsets[b] - offsets[a] - sep
        total = width + extra
        # One line; or, with a label, the label alone on the first line.
        if total <= line or (extra and width <= line):
            return True
        if total > two_lines:
            return False
        # Two lines: the last break whose top line fits is the only one to try.
        skip = offsets[a] + sep
        i = bisect_right(offsets, line - extra + skip, a + 1, b) - 1
        return i > a and width - (offsets[i] - skip) - sep <= line

    if fits(0, n):
        return [(0, n)]  # the usual short segment: one cue, nothing to choose
    # reach[c]: the most tokens c cues can hold (a cue reaches at most two lines' width).
    reach = [0]
    while reach[-1] < n:
        s = reach[-1]
        lo = s + 1
        hi = min(n, bisect_right(offsets, offsets[s] + sep - extra + two_lines) - 1)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(s, mid):
                lo = mid
            else:
                hi = mid - 1
        reach.append(max(lo, s + 1))
    fewest = len(reach) - 1
    # first[c]: the first end with c cues from which the last token is still reached in
    # `fewest`: the earliest start of a cue that ends at first[c + 1].
    first = [0] * (fewest + 1)
    first[fewest] = n
    for c in range(fewest - 1, 0, -1):
        lo, hi = reach[c - 1] + 1, reach[c]  # a start with c cues before it; hi fits
        end = first[c + 1]
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(mid, end):
                hi = mid
            else:
                lo = mid + 1
        first[c] = lo
    ragged = [0] * (n + 1)
    back = [0] * (n + 1)
    # (2 * line - width) ** 2, width = offsets[end] - offsets[start] - sep
    for end in range(first[1], reach[1] + 1):
        unused = 2 * line - offsets[end] + sep
        ragged[end] = unused * unused
    for c in range(2, fewest + 1):
        start = first[c - 1]
        stop = reach[c - 1] + 1  # the starts with c - 1 cues before them
        for end in range(first[c], reach[c] + 1):
            while not fits(start, end):
                start += 1
            room = 2 * line - offsets[end] + sep
            if stop - start == 1:
                unused = room + offsets[start]
                ragged[end] = ragged[start] + unused * unused
                back[end] = start
                continue
            costs = [ragged[s] + (room + offsets[s]) ** 2 for s in range(start, stop)]
            best = min(costs)
            ragged[end] = best
            # Ties go to the later start, as in `_chunk`.
            back[end] = stop - 1 - costs[::-1].index(best)
    bounds: list[tuple[int, int]] = []
    end = n
    while end > 0:
        start = back[end]
        bounds.append((start, end))
        end = start
    bounds.reverse()
    return bounds


def _break_at(offsets: list[int], sep: int, extra: int, a: int, b: int) -> int | None:
    """`_break_index` from prefix widths: the first token of the second line, `a` for the
    break right after the label, or None when no break makes two lines that fit.

    The top line grows and the bottom one shrinks as the break moves right, so the wider of
    the two is narrowest at the first break whose top is at least its bottom, or the one
    just before it (which wins ties: a shorter top line reads better).
    """
    base = offsets[a] + sep - extra  # top(t) = offsets[t] - base
    # top(t) >= bottom(t) = offsets[b] - offsets[t] - sep  <=>  2 offsets[t] >= that + base
    first = bisect_left(offsets, (offsets[b] - sep + base + 1) // 2, a + 1, b)
    best: tuple[int, int] | None = None  # (width of the wider line, break)
    for t in (first - 1, first):
        if t == a and extra:
            top, bottom = extra - 1, offsets[b] - offsets[a] - sep  # "Name:" on its own
        elif a < t < b:
            top, bottom = offsets[t] - base, offsets[b] - offsets[t] - sep
        else:
            continue
        width = max(top, bottom)
        if width <= MAX_LINE_CHARS and (best is None or width < best[0]):
            best = (width, t)
    return best[1] if best else None


def _lines(
    texts: list[str], offsets: list[int], a: int, b: int, sep: str, label: str | None
) -> tuple[str, ...]:
    """`_layout` of tokens a..b-1 (with the SRT label in front), from prefix widths."""
    extra = len(label) + 2 if label else 0
    width = offsets[b] - offsets[a] - len(sep)
    head = f"{label}: " if label else ""
    if width + extra <= MAX_LINE_CHARS:
        return (head + sep.join(texts[a:b]),)
    t = _break_at(offsets, len(sep), extra, a, b)
    if t is None:
        return (head + sep.join(texts[a:b]),)  # best effort: nothing fits
    if t == a:
        return f"{label}:", sep.join(texts[a:b])
    return head + sep.join(texts[a:t]), sep.join(texts[t:b])


def _sequence_rows(cues: list[_CueRow]) -> list[_CueRow]:
    """Order cues and make them non-overlapping, each lasting at least MIN_CUE_MS.

    Players stack or drop overlapping cues, so a cue is clipped at the next one's start;
    where clipping would leave it too short, the next cue is pushed later instead.
    """
    ordered = sorted(cues, key=itemgetter(0))  # stable: segment order on ties
    result: list[_CueRow] = []
    previous_end = 0  # also keeps negative input times off the output
    last = len(ordered) - 1
    for i, (start_ms, end_ms, lines, speaker) in enumerate(ordered):
        start = max(start_ms, previous_end)
        end = max(end_ms, start + MIN_CUE_MS)
        if i < last:
            end = min(end, max(ordered[i + 1][0], start + MIN_CUE_MS))
        result.append((start, end, lines, speaker))
        previous_end = end
    return result


# --- subtitles: the reference token path (rare segments, and the tests' yardstick) ------


def _segment_tokens(seg: ExportSegment, word_sep: str) -> list[_Token]:
    words = [w for w in seg.words if w.word.strip()]
    # Words that no longer spell the text (edited after transcription) would show stale
    # wording; timing the text by proportion is the lesser evil.
    if words and _squeeze("".join(w.word for w in words)) == _squeeze(seg.text):
        tokens = [_Token(w.start, w.end, " ".join(w.word.split()), word_sep) for w in words]
    else:
        # No word timings: the text's own spaces are the word boundaries, and each word
        # gets a share of the segment's time proportional to its character count.
        pieces = seg.text.split()
        tokens = _spread(pieces, seg.start, seg.end, " ", " ") if pieces else []
    if all(len(token.text) <= MAX_LINE_CHARS for token in tokens):
        return tokens  # the common case: no token to cut
    return [piece for token in tokens for piece in _split_long(token)]


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _split_long(token: _Token) -> list[_Token]:
    """Cut a token longer than a line (a URL, unspaced script) into line-sized pieces."""
    text = token.text
    if len(text) <= MAX_LINE_CHARS:
        return [token]
    pieces = [text[i : i + MAX_LINE_CHARS] for i in range(0, len(text), MAX_LINE_CHARS)]
    return _spread(pieces, token.start, token.end, "", token.sep)


def _spread(
    pieces: Sequence[str], start: float, end: float, sep: str, first_sep: str
) -> list[_Token]:
    """Time each piece by its character offset within [start, end] (separators count too)."""
    total = sum(len(p) for p in pieces) + len(sep) * (len(pieces) - 1)
    span = max(end - start, 0.0)
    tokens: list[_Token] = []
    offset = 0
    for i, piece in enumerate(pieces):
        offset += len(sep) if i else 0
        piece_start = start + span * offset / total
        offset += len(piece)
        piece_end = start + span * offset / total
        tokens.append(_Token(piece_start, piece_end, piece, sep if i else first_sep))
    return tokens


def _chunk(tokens: Sequence[_Token], label: str | None) -> list[list[_Token]]:
    """Split tokens into the fewest cues that fit, filled as evenly as possible.

    A greedy fill leaves orphans (a lone last word in its own cue); this is the classic
    minimum-raggedness dynamic programme over cue boundaries.
    """
    # offsets[j] = printed width of tokens[:j] (plus the first sep), so any run's width is
    # a subtraction: this loop sees every candidate cue of the segment.
    offsets = list(accumulate((len(t.sep) + len(t.text) for t in tokens), initial=0))
    # best[j]: ((cue count, raggedness), start of the last cue) for tokens[:j]; tuples
    # compare cue count first, so evenness only decides between equally short splits.
    unreached = ((len(tokens) + 1, 0), 0)
    best: list[tuple[tuple[int, int], int]] = [((0, 0), 0)] + [unreached] * len(tokens)
    for end in range(1, len(tokens) + 1):
        for start in range(end - 1, -1, -1):
            chunk = tokens[start:end]
            width = offsets[end] - offsets[start] - len(chunk[0].sep)
            # A lone token always makes a cue; once a longer run overflows, so do all longer.
            if len(chunk) > 1 and not _fits(chunk, width, label):
                break
            (count, raggedness), _ = best[start]
            # Squared unused room: two half-full cues beat a full one and an orphan.
            cost = (count + 1, raggedness + (2 * MAX_LINE_CHARS - width) ** 2)
            if cost < best[end][0]:
                best[end] = (cost, start)
    chunks: list[list[_Token]] = []
    end = len(tokens)
    while end > 0:
        start = best[end][1]
        chunks.append(list(tokens[start:end]))
        end = start
    return chunks[::-1]


def _chunk_fast(tokens: Sequence[_Token], label: str | None) -> list[list[_Token]]:
    """The same cues as `_chunk` (tests/transcriptions/test_export_speed.py compares them) in
    a fraction of the time (issue 15: a 30,000-word SRT spent 85% of its time in `_fits` and
    `_break_index`).

    - A run that fits still fits without its first or last token, so the runs ending at `end`
      that fit start at lo(end)..end-1, and lo never moves back: one pointer finds it, with one
      fit check per move.
    - Fewer cues come first, and covering a longer prefix never takes fewer cues: only starts
      with as few cues as lo(end) can win, and they are the first ones from lo(end) on.
    - Whether a run fits on two lines is one binary search over the prefix widths: the top
      line grows with the break's position and so does what it takes from the bottom line,
      so the last break whose top line fits is the only one to try.

    Ties are settled as `_chunk` does: the later start wins.
    """
    n = len(tokens)
    line = MAX_LINE_CHARS
    seps = [len(t.sep) for t in tokens]
    offsets = list(accumulate((len(t.sep) + len(t.text) for t in tokens), initial=0))
    starts = [t.start for t in tokens]
    ends = [t.end for t in tokens]
    extra = len(label) + 2 if label else 0  # "Name: " in front of the first line

    max_s = MAX_CUE_SECONDS
    two_lines = 2 * line + 1
    counts = [0] * (n + 1)
    ragged = [0] * (n + 1)
    back = [0] * (n + 1)
    lo = 0
    for end in range(1, n + 1):
        last_end = ends[end - 1]
        off_end = offsets[end]
        # Move lo to the first start whose run to `end` fits (inlined: it runs per token).
        while end - lo > 1:  # a lone token always makes a cue
            if last_end - starts[lo] <= max_s:
                width = off_end - offsets[lo] - seps[lo]
                total = width + extra
                # One line; or, with a label, the label alone on the first line.
                if total <= line or (extra and width <= line):
                    break
                if total <= two_lines:
                    # Two lines: the last break whose top line fits is the only one to try.
                    skip = offsets[lo] + seps[lo]
                    i = bisect_right(offsets, line - extra + skip, lo + 1, end) - 1
                    if i > lo and width - (offsets[i] - skip) - seps[i] <= line:
                        break
            lo += 1
        fewest = counts[lo]
        best_cost = -1
        best_start = 0
        room = 2 * line - off_end
        for start in range(lo, end):
            if counts[start] != fewest:
                break
            if end - start > 1 and last_end - starts[start] > max_s:
                continue  # word times out of order: never a cue longer than allowed
            # (2 * line - width) ** 2, width = off_end - offsets[start] - seps[start]
            unused = room + offsets[start] + seps[start]
            cost = ragged[start] + unused * unused
            if best_cost < 0 or cost <= best_cost:
                best_cost, best_start = cost, start
        counts[end], ragged[end], back[end] = fewest + 1, best_cost, best_start
    chunks: list[list[_Token]] = []
    end = n
    while end > 0:
        start = back[end]
        chunks.append(list(tokens[start:end]))
        end = start
    return chunks[::-1]


def _fits(tokens: Sequence[_Token], width: int, label: str | None) -> bool:
    if tokens[-1].end - tokens[0].start > MAX_CUE_SECONDS:
        return False
    if label:
        width += len(label) + 2  # "Name: "
    if width <= MAX_LINE_CHARS:
        return True
    # Two lines hold at most both widths plus the space dropped at the break.
    if width > 2 * MAX_LINE_CHARS + 1:
        return False
    return _break_index(_labelled(tokens, label)) is not None


def _labelled(tokens: Sequence[_Token], label: str | None) -> Sequence[_Token]:
    """Put the SRT speaker label in front as a token of its own (it is never broken)."""
    if not label:
        return tokens
    first = tokens[0]
    # A space after "Name:" even in unspaced scripts, where the first token has no sep.
    return [_Token(first.start, first.start, f"{label}:", ""), replace(first, sep=" "), *tokens[1:]]


def _layout(tokens: Sequence[_Token]) -> tuple[str, ...]:
    """The cue's lines: one if it fits, else two balanced ones (best effort if neither)."""
    single = _join(tokens)
    cut = None if len(single) <= MAX_LINE_CHARS else _break_index(tokens)
    if cut is None:
        return (single,)
    return _join(tokens[:cut]), _join(tokens[cut:])


def _break_index(tokens: Sequence[_Token]) -> int | None:
    """Where to break two lines so the wider one is narrowest; None if none fits."""
    total = sum(len(t.sep) + len(t.text) for t in tokens) - len(tokens[0].sep)
    best: tuple[int, int] | None = None  # (width of the wider line, break index)
    top = -len(tokens[0].sep)  # the first token's sep is never printed
    for i in range(1, len(tokens)):
        top += len(tokens[i - 1].sep) + len(tokens[i - 1].text)
        bottom = total - top - len(tokens[i].sep)
        width = max(top, bottom)
        # Strict "<" keeps the earliest break on ties: a shorter top line reads better.
        if width <= MAX_LINE_CHARS and (best is None or width < best[0]):
            best = (width, i)
    return best[1] if best else None


def _join(tokens: Sequence[_Token]) -> str:
    if not tokens:
        return ""
    parts = [t.sep + t.text for t in tokens]
    parts[0] = tokens[0].text  # the first token's sep is never printed
    return "".join(parts)


def _word_separator(language: str | None) -> str:
    code = re.split(r"[-_]", (language or "").strip().lower(), maxsplit=1)[0]
    return "" if code in _SPACELESS_LANGUAGES else " "


def _clean_label(speaker: str | None) -> str | None:
    # Speaker names end up inside a single subtitle line or tag: no newlines, no blanks.
    label = " ".join((speaker or "").split())
    return label or None


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _to_ms(seconds: float) -> int:
    # NaN/inf cannot be written as a timestamp; negatives are clamped by _sequence.
    return round(seconds * 1000) if math.isfinite(seconds) else 0


# --- subtitles: formatting --------------------------------------------------------------------


_MILLIS = tuple(f"{i:03d}" for i in range(1000))


def _stamper(decimal_mark: str) -> Callable[[int], str]:
    """HH:MM:SS<mark>mmm; the part up to the mark is shared by every cue in that second."""
    heads: dict[int, str] = {}

    def stamp(ms: int) -> str:
        seconds, millis = divmod(ms, 1000)
        head = heads.get(seconds)
        if head is None:
            hours, rest = divmod(seconds, 3600)
            minutes, secs = divmod(rest, 60)
            head = heads[seconds] = f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}"
        return head + _MILLIS[millis]

    return stamp


def _render_srt(doc: ExportDocument) -> str:
    return _srt(_build_cues(doc, with_labels=True))


def _srt(cues: list[_CueRow]) -> str:
    stamp = _stamper(",")
    blocks = [
        f"{number}\n{stamp(start)} --> {stamp(end)}\n" + "\n".join(lines) + "\n\n"
        for number, (start, end, lines, _) in enumerate(cues, start=1)
    ]
    return "".join(blocks).removesuffix("\n")


def _render_vtt(doc: ExportDocument) -> str:
    return _vtt(_build_cues(doc, with_labels=False))


def _vtt(cues: list[_CueRow]) -> str:
    stamp = _stamper(".")
    voices: dict[str, str] = {}
    blocks = ["WEBVTT\n"]
    for start, end, lines, speaker in cues:
        text = "\n".join(lines)
        if "&" in text or "<" in text or ">" in text:
            text = _vtt_escape(text)
        if speaker:
            # The voice span covers the whole cue, so the closing </v> may be omitted.
            voice = voices.get(speaker)
            if voice is None:
                voice = voices[speaker] = f"<v {_vtt_escape(speaker)}>"
            text = voice + text
        blocks.append(f"\n{stamp(start)} --> {stamp(end)}\n{text}\n")
    return "".join(blocks)


def _vtt_escape(text: str) -> str:
    # Cue text is markup in WebVTT; escaping ">" also rules out a stray "-->".
    return html.escape(text, quote=False)


# --- DOCX ------------------------------------------------------------------------------------

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _clock(seconds: float) -> str:
    ms = _to_ms(max(seconds, 0.0))
    hours, rest = divmod(ms // 1000, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _render_docx(doc: ExportDocument) -> bytes:
    """A Word document: the title, then one paragraph per turn ("[00:01:02] Alice" in bold,
    then what they said); without speakers, one paragraph per segment with its time."""
    from docx import Document
    from docx.shared import Pt

    document = Document()
    document.core_properties.title = _xml_safe(doc.title)[:255]
    document.add_heading(_xml_safe(doc.title) or FALLBACK_STEM, level=1)
    facts = [f"Language: {doc.language}" if doc.language else ""]
    if doc.duration is not None and math.isfinite(doc.duration):
        facts.append(f"Duration: {_clock(doc.duration)}")
    if doc.speakers:
        facts.append(
            "Speakers: "
            + ", ".join(f"{_xml_safe(sp.name)} ({_clock(sp.talk_time)})" for sp in doc.speakers)
        )
    if any(facts):
        document.add_paragraph(" · ".join(f for f in facts if f)).runs[0].italic = True
    dialogue = any(seg.speaker for seg in doc.segments)
    for part in _turns(doc) if dialogue else doc.segments:
        text = _xml_safe(" ".join(part.text.split()))
        if not text:
            continue
        paragraph = document.add_paragraph()
        head = f"[{_clock(part.start)}]"
        label = _clean_label(part.speaker)
        if label:
            head += f" {_xml_safe(label)}"
        lead = paragraph.add_run(head)
        lead.bold = True
        lead.font.size = Pt(10)
        paragraph.add_run("\n" + text if label else " " + text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


_XML_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    # XML 1.0 cannot hold most control characters; python-docx refuses them.
    return _XML_UNSAFE.sub("", text)


_RENDERERS: dict[str, tuple[Callable[[ExportDocument], str], str]] = {
    "txt": (_render_txt, "text/plain; charset=utf-8"),
    "srt": (_render_srt, "application/x-subrip; charset=utf-8"),
    "vtt": (_render_vtt, "text/vtt; charset=utf-8"),
    "json": (_render_json, "application/json"),
    "csv": (_render_csv, "text/csv; charset=utf-8"),
    "tsv": (_render_tsv, "text/tab-separated-values; charset=utf-8"),
}
