"""The recording page's transcript as HTML: speaker turns of word spans, each word carrying its
start time (`data-s`) so the player can highlight and seek without any other data.

Built here in one pass rather than in a template loop: a 3-hour transcript is ~30,000 words,
and this keeps its page render in tens of milliseconds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from markupsafe import Markup, escape
from sqlalchemy import Text, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.models import Segment

PALETTE = 8  # speaker colours in the stylesheet (--spk-0 .. --spk-7)


@dataclass
class Turn:
    index: int
    start: float
    end: float
    speaker: str | None
    html: Markup
    words: int


def clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def words_html(words: list[dict[str, Any]], fallback_text: str, start: float) -> Markup:
    if not words:
        return Markup('<span data-s="{:.3f}">{}</span>').format(start, fallback_text)
    parts = []
    for w in words:
        if "engines" in w:  # reconciled: maybe a low-agreement mark
            parts.append(_reconciled(w))
        else:  # the common path, inline: 30,000 of these must stay cheap
            word = escape(str(w.get("word", "")).strip())
            parts.append(f'<span data-s="{float(w["start"]):.3f}">{word}</span>')
    return Markup(" ".join(parts))  # noqa: S704 - every word is escaped above


def _plain(w: dict[str, Any], word: str) -> str:
    return f'<span data-s="{float(w["start"]):.3f}">{escape(word)}</span>'


def _reconciled(w: dict[str, Any]) -> str:
    """A word of a reconciled transcript. One the engines did not all hear alike is marked by
    shape, not colour alone (a dotted underline and a superscript mark), focusable, with the
    alternatives in `data-alt` (shown on hover and on focus by the stylesheet, no script) and
    in its accessible name. Malformed figures show the word plain."""
    word = str(w.get("word", "")).strip()
    try:
        agreement, engines = int(w.get("agreement") or 0), int(w["engines"])
    except (TypeError, ValueError):
        agreement = engines = 0
    if agreement >= engines:
        return _plain(w, word)
    heard = []
    for alt in w.get("alternatives") or []:
        if isinstance(alt, dict) and alt.get("word"):
            names = ", ".join(str(e) for e in alt.get("engines") or [])
            heard.append(f"“{str(alt['word']).strip()}”" + (f" ({names})" if names else ""))
    alt_text = f"{agreement} of {engines} engines agree" + (
        "; also heard: " + "; ".join(heard) if heard else ""
    )
    return (
        f'<span data-s="{float(w["start"]):.3f}" class="low" tabindex="0" '
        f'data-alt="{escape(alt_text)}" aria-label="{escape(word)} ({escape(alt_text)})">'
        f"{escape(word)}</span>"
    )


async def turns(session: AsyncSession, transcription_id: uuid.UUID) -> list[Turn]:
    rows = await session.execute(
        select(
            Segment.index,
            Segment.start,
            Segment.end,
            Segment.text,
            Segment.speaker,
            cast(Segment.words, Text),
        )
        .where(Segment.transcription_id == transcription_id)
        .order_by(Segment.index)
    )
    out = []
    for index, start, end, text, speaker, words_json in rows:
        words = orjson.loads(words_json or "[]")
        out.append(Turn(index, start, end, speaker, words_html(words, text, start), len(words)))
    return out


def speaker_colours(labels: list[str]) -> dict[str, int]:
    return {label: i % PALETTE for i, label in enumerate(labels)}


def article_html(
    turns: list[Turn], names: dict[str, str], colours: dict[str, int], *, editable: bool = True
) -> Markup:
    """Every turn of the transcript, in one string (a template loop over thousands of turns
    costs more than the words themselves). Without `editable` (a role that reads only) the
    turns have no Edit button."""
    parts = []
    for turn in turns:
        head = ""
        cls = "turn"
        speaker_attr = ""
        if turn.speaker:
            label = escape(turn.speaker)
            cls += f" spk-{colours.get(turn.speaker, 0)}"
            speaker_attr = f' data-speaker="{label}"'
            name = escape(names.get(turn.speaker, turn.speaker))
            head = f'<span class="who" data-label="{label}">{name}</span>'
        at = clock(turn.start)
        edit = (
            f'<button type="button" class="edit ghost small" aria-label="Edit turn at {at}">'
            "Edit</button>"
            if editable
            else ""
        )
        parts.append(
            f'<section class="{cls}" data-index="{turn.index}"{speaker_attr}>'
            f'<div class="turn-head">{head}'
            f'<button type="button" class="time" data-seek="{turn.start:.3f}" '
            f'aria-label="Play from {at}">{at}</button>'
            f"{edit}</div>"
            f'<p class="words">{turn.html}</p></section>'
        )
    return Markup("".join(parts))  # noqa: S704 - names, labels and words are escaped above
