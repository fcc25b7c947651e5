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
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from pathlib import PurePosixPath
from typing import NamedTuple

import orjson

FORMATS: tuple[str, ...] = ("txt", "srt", "vtt", "json", "csv", "tsv", "docx", "agent")
BINARY_FORMATS: tuple[str, ...] = ("docx",)  # Rendered.content is bytes

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


@dataclass(frozen=True)
class _Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    speaker: str | None


def _build_cues(doc: ExportDocument, *, with_labels: bool) -> list[_Cue]:
    """Split segments into readable cues, then make their timings sequential.

    ``with_labels`` writes "Speaker: " into the text (SRT); VTT carries the speaker in a
    voice tag instead, so the name does not take up line width there.
    """
    word_sep = _word_separator(doc.language)
    cues: list[_Cue] = []
    for seg in doc.segments:
        speaker = _clean_label(seg.speaker)
        label = _shorten(speaker) if speaker and with_labels else None
        for chunk in _chunk_fast(_segment_tokens(seg, word_sep), label):
            lines = _layout(_labelled(chunk, label))
            cues.append(_Cue(_to_ms(chunk[0].start), _to_ms(chunk[-1].end), lines, speaker))
    return _sequence(cues)


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


def _sequence(cues: list[_Cue]) -> list[_Cue]:
    """Order cues and make them non-overlapping, each lasting at least MIN_CUE_MS.

    Players stack or drop overlapping cues, so a cue is clipped at the next one's start;
    where clipping would leave it too short, the next cue is pushed later instead.
    """
    ordered = sorted(cues, key=lambda c: c.start_ms)  # stable: segment order on ties
    result: list[_Cue] = []
    previous_end = 0  # also keeps negative input times off the output
    for i, cue in enumerate(ordered):
        start = max(cue.start_ms, previous_end)
        end = max(cue.end_ms, start + MIN_CUE_MS)
        if i + 1 < len(ordered):
            end = min(end, max(ordered[i + 1].start_ms, start + MIN_CUE_MS))
        result.append(replace(cue, start_ms=start, end_ms=end))
        previous_end = end
    return result


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


def _timestamp(ms: int, decimal_mark: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal_mark}{millis:03d}"


def _timing(cue: _Cue, decimal_mark: str) -> str:
    return f"{_timestamp(cue.start_ms, decimal_mark)} --> {_timestamp(cue.end_ms, decimal_mark)}"


def _render_srt(doc: ExportDocument) -> str:
    blocks = [
        "\n".join([str(number), _timing(cue, ","), *cue.lines])
        for number, cue in enumerate(_build_cues(doc, with_labels=True), start=1)
    ]
    return "".join(f"{block}\n\n" for block in blocks).removesuffix("\n")


def _render_vtt(doc: ExportDocument) -> str:
    blocks = [_vtt_block(cue) for cue in _build_cues(doc, with_labels=False)]
    return "WEBVTT\n" + "".join(f"\n{block}\n" for block in blocks)


def _vtt_block(cue: _Cue) -> str:
    lines = [_vtt_escape(line) for line in cue.lines]
    if cue.speaker:
        # The voice span covers the whole cue, so the closing </v> may be omitted.
        lines[0] = f"<v {_vtt_escape(cue.speaker)}>{lines[0]}"
    return "\n".join([_timing(cue, "."), *lines])


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
