"""Editing a transcript, and its versions.

Every edit runs in the request's transaction with the transcription row locked (edits of one
transcript are serialised): the segment rows are changed, the transcript's text and counts
follow, a version snapshot is appended and a `search.index` job is queued. Before the first
change, the untouched state is saved as version 1 (`engine`), so the original is never lost.
"""

from __future__ import annotations

import difflib
import uuid
from typing import Any

import orjson
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.errors import Conflict, NotFound, ValidationFailed
from verbatim.models import (
    Segment,
    Speaker,
    Transcription,
    TranscriptionStatus,
    TranscriptionVersion,
    User,
    VersionKind,
)
from verbatim.versions import align
from verbatim.versions.schemas import SegmentEdit

# --- snapshots ---------------------------------------------------------------------------------


def segment_dict(segment: Segment) -> dict[str, Any]:
    return {
        "index": segment.index,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "speaker": segment.speaker,
        "confidence": segment.confidence,
        "words": segment.words,
    }


async def _segments(session: AsyncSession, transcription_id: uuid.UUID) -> list[Segment]:
    rows = await session.scalars(
        select(Segment).where(Segment.transcription_id == transcription_id).order_by(Segment.index)
    )
    return list(rows)


async def current_version(session: AsyncSession, transcription_id: uuid.UUID) -> int | None:
    latest: int | None = await session.scalar(
        select(func.max(TranscriptionVersion.version)).where(
            TranscriptionVersion.transcription_id == transcription_id
        )
    )
    return latest


# The snapshot is built by PostgreSQL from the rows themselves: a 30,000-word transcript's few MB
# of JSON never travel to Python and back.
_INSERT_VERSION = text(
    """
    INSERT INTO transcription_version
        (id, transcription_id, version, kind, author_id, summary, snapshot, created_at)
    SELECT :id, :tid, :version, :kind, :author, :summary,
        jsonb_build_object(
            'segments', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                    'index', s.index, 'start', s.start, 'end', s."end", 'text', s.text,
                    'speaker', s.speaker, 'confidence', s.confidence, 'words', s.words)
                    ORDER BY s.index)
                FROM segment s WHERE s.transcription_id = :tid), '[]'::jsonb),
            'speakers', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                    'label', p.label, 'display_name', p.display_name) ORDER BY p.label)
                FROM speaker p WHERE p.transcription_id = :tid), '[]'::jsonb)),
        now()
    """
)


_UPDATE_TEXT = text(
    """
    UPDATE transcription SET
        text = coalesce((
            SELECT string_agg(btrim(s.text), ' ' ORDER BY s.index) FROM segment s
            WHERE s.transcription_id = :tid AND btrim(s.text) <> ''), ''),
        word_count = (
            SELECT coalesce(sum(jsonb_array_length(s.words)), 0) FROM segment s
            WHERE s.transcription_id = :tid)
    WHERE id = :tid
    """
)


async def record_version(
    session: AsyncSession,
    transcription: Transcription,
    kind: VersionKind,
    author: User | None,
    summary: str,
) -> int:
    """Append the transcript's current state (the segment rows as they are now) as its next
    version; returns its number. For any writer of a new state: edits, reprocessing,
    reconciliation. The caller holds the transcription row locked."""
    latest = await current_version(session, transcription.id)
    # A reconciled transcript's first state is the reconciliation itself (it has no engine run).
    if latest is None and kind not in (VersionKind.engine, VersionKind.reconcile):
        raise RuntimeError("record the baseline first (ensure_baseline)")
    await session.flush()  # the rows as changed so far
    version = (latest or 0) + 1
    await session.execute(
        _INSERT_VERSION,
        {
            "id": uuid.uuid4(),
            "tid": transcription.id,
            "version": version,
            "kind": kind.value,
            "author": author.id if author else None,
            "summary": summary[:500],
        },
    )
    return version


async def ensure_baseline(session: AsyncSession, transcription: Transcription) -> int:
    """Version 1 is the transcript before any change; saved on the first change."""
    latest = await current_version(session, transcription.id)
    if latest is None:
        version = await record_version(
            session, transcription, VersionKind.engine, None, "as transcribed"
        )
        await record_run(session, transcription.id, version, run_of(transcription))
        return version
    return latest


def run_of(transcription: Transcription) -> dict[str, Any]:
    """What produced the transcription's current segments, kept with its version."""
    return {
        "engine": transcription.engine,
        "model": transcription.model_name,
        "model_version": transcription.model_version,
        "mode": transcription.mode.value,
        "requested_language": transcription.requested_language,
        "options": transcription.options,
        "language": transcription.language,
        "language_probability": transcription.language_probability,
        "duration": transcription.duration,
        "word_count": transcription.word_count,
        "avg_confidence": transcription.avg_confidence,
        "processing_time_s": transcription.processing_time_s,
        "quality": transcription.quality,
    }


# --- editing -------------------------------------------------------------------------------------


async def _editable(
    session: AsyncSession, user: User, transcription_id: uuid.UUID, base_version: int | None
) -> tuple[Transcription, int]:
    from verbatim.transcriptions.service import get_transcription

    transcription = await get_transcription(session, user, transcription_id)
    if transcription.status is not TranscriptionStatus.completed:
        raise Conflict(
            f"The transcription is {transcription.status.value}, not completed",
            code="transcription_not_ready",
        )
    # Serialise edits of one transcript: versions are numbered and snapshots are whole.
    await session.execute(
        select(Transcription.id).where(Transcription.id == transcription.id).with_for_update()
    )
    latest = await ensure_baseline(session, transcription)
    if base_version is not None and base_version != latest:
        raise Conflict(
            f"The transcript changed since version {base_version} (now {latest}); reload it",
            code="version_conflict",
            details={"current_version": latest},
        )
    return transcription, latest


async def _segment(session: AsyncSession, transcription_id: uuid.UUID, index: int) -> Segment:
    segment = await session.scalar(
        select(Segment).where(Segment.transcription_id == transcription_id, Segment.index == index)
    )
    if segment is None:
        raise NotFound(f"No turn {index} in this transcript", code="segment_not_found")
    return segment


def _text_of(words: list[dict[str, Any]]) -> str:
    return " ".join(str(w.get("word", "")).strip() for w in words if str(w.get("word", "")).strip())


async def _after_edit(
    session: AsyncSession,
    transcription: Transcription,
    user: User,
    summary: str,
) -> int:
    """Text and counts follow the segments; a new version; search re-indexes."""
    from verbatim.search.service import queue_index

    await session.flush()
    # Text and counts from the rows, in the database (a long transcript has thousands of turns).
    await session.execute(_UPDATE_TEXT, {"tid": transcription.id})
    await session.refresh(transcription, ["text", "word_count"])
    version = await record_version(session, transcription, VersionKind.edit, user, summary)
    await queue_index(session, transcription)
    return version


async def edit_segment(
    session: AsyncSession,
    user: User,
    transcription_id: uuid.UUID,
    index: int,
    body: SegmentEdit,
) -> tuple[int, list[Segment]]:
    if body.text is None and body.speaker is None:
        raise ValidationFailed(
            "Send the new text, the new speaker, or both", code="nothing_to_change"
        )
    if body.text is not None and not body.text.strip():
        raise ValidationFailed(
            "A turn cannot be empty; merge it into a neighbour instead", code="empty_text"
        )
    transcription, _ = await _editable(session, user, transcription_id, body.base_version)
    segment = await _segment(session, transcription.id, index)
    changes: list[str] = []
    if body.speaker is not None and body.speaker != segment.speaker:
        await _move_speaker(session, transcription, segment, body.speaker)
        changes.append(f"turn {index}: speaker {segment.speaker} -> {body.speaker}")
        segment.speaker = body.speaker
    if body.text is not None:
        words = align.align(segment.words or [], body.text, segment.start, segment.end)
        segment.words = words
        segment.text = " ".join(align.tokens(body.text))
        changes.append(f"turn {index}: text edited")
    if not changes:
        raise ValidationFailed("The turn already says this", code="nothing_to_change")
    version = await _after_edit(session, transcription, user, "; ".join(changes))
    return version, [segment]


async def _move_speaker(
    session: AsyncSession, transcription: Transcription, segment: Segment, label: str
) -> None:
    speakers = {
        s.label: s
        for s in await session.scalars(
            select(Speaker).where(Speaker.transcription_id == transcription.id).with_for_update()
        )
    }
    if label not in speakers:
        raise ValidationFailed(
            f"No speaker {label!r} in this transcript",
            code="unknown_speaker",
            details={"speakers": sorted(speakers)},
        )
    seconds = max(segment.end - segment.start, 0.0)
    words = len(segment.words or [])
    old = speakers.get(segment.speaker or "")
    if old is not None:
        old.talk_time = round(max(old.talk_time - seconds, 0.0), 3)
        old.word_count = max(old.word_count - words, 0)
    new = speakers[label]
    new.talk_time = round(new.talk_time + seconds, 3)
    new.word_count += words


async def split_segment(
    session: AsyncSession,
    user: User,
    transcription_id: uuid.UUID,
    index: int,
    word_index: int,
    base_version: int | None,
) -> tuple[int, list[Segment]]:
    """Split a turn before its word `word_index`; every word keeps its time."""
    transcription, _ = await _editable(session, user, transcription_id, base_version)
    segment = await _segment(session, transcription.id, index)
    words = list(segment.words or [])
    if not 1 <= word_index < len(words):
        raise ValidationFailed(
            f"A turn of {len(words)} words splits before word 1 to {len(words) - 1}",
            code="split_out_of_range",
            details={"word_count": len(words)},
        )
    await session.execute(
        update(Segment)
        .where(Segment.transcription_id == transcription.id, Segment.index > index)
        .values(index=Segment.index + 1)
        .execution_options(synchronize_session=False)
    )
    head, tail = words[:word_index], words[word_index:]
    second = Segment(
        transcription_id=transcription.id,
        index=index + 1,
        start=float(tail[0]["start"]),
        end=segment.end,
        text=_text_of(tail),
        speaker=segment.speaker,
        confidence=segment.confidence,
        words=tail,
    )
    segment.words = head
    segment.text = _text_of(head)
    segment.end = float(head[-1]["end"])
    session.add(second)
    version = await _after_edit(
        session, transcription, user, f"turn {index}: split before word {word_index}"
    )
    return version, [segment, second]


async def merge_segment(
    session: AsyncSession,
    user: User,
    transcription_id: uuid.UUID,
    index: int,
    base_version: int | None,
) -> tuple[int, list[Segment]]:
    """Merge turn `index` with the next one; the first one's speaker says both."""
    transcription, _ = await _editable(session, user, transcription_id, base_version)
    segment = await _segment(session, transcription.id, index)
    following = await session.scalar(
        select(Segment).where(
            Segment.transcription_id == transcription.id, Segment.index == index + 1
        )
    )
    if following is None:
        raise ValidationFailed("The last turn has no next turn to merge", code="no_next_segment")
    if following.speaker != segment.speaker and following.speaker is not None:
        await _move_speaker(session, transcription, following, segment.speaker or "")
    segment.words = [*(segment.words or []), *(following.words or [])]
    segment.text = " ".join(t for t in (segment.text.strip(), following.text.strip()) if t)
    segment.end = max(segment.end, following.end)
    await session.delete(following)
    await session.flush()
    await session.execute(
        update(Segment)
        .where(Segment.transcription_id == transcription.id, Segment.index > index + 1)
        .values(index=Segment.index - 1)
        .execution_options(synchronize_session=False)
    )
    version = await _after_edit(session, transcription, user, f"turns {index}+{index + 1}: merged")
    return version, [segment]


async def segment_count(session: AsyncSession, transcription_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count()).where(Segment.transcription_id == transcription_id)
    )
    return int(count or 0)


# --- reading versions ----------------------------------------------------------------------------


async def list_versions(
    session: AsyncSession, user: User, transcription_id: uuid.UUID
) -> tuple[list[dict[str, Any]], int | None]:
    from verbatim.transcriptions.service import get_transcription

    transcription = await get_transcription(session, user, transcription_id)
    segments_json = TranscriptionVersion.snapshot["segments"]
    rows = (
        await session.execute(
            select(
                TranscriptionVersion.version,
                TranscriptionVersion.kind,
                TranscriptionVersion.author_id,
                TranscriptionVersion.summary,
                TranscriptionVersion.created_at,
                func.jsonb_array_length(segments_json),
            )
            .where(TranscriptionVersion.transcription_id == transcription.id)
            .order_by(TranscriptionVersion.version.desc())
        )
    ).all()
    items = [
        {
            "version": version,
            "kind": kind,
            "author_id": author_id,
            "summary": summary,
            "created_at": created_at,
            "segment_count": count or 0,
        }
        for version, kind, author_id, summary, created_at, count in rows
    ]
    return items, (rows[0][0] if rows else None)


async def version_snapshot(
    session: AsyncSession, transcription_id: uuid.UUID, version: int
) -> dict[str, Any]:
    """Version `version`'s snapshot; before the first change, version 1 is the rows as they
    are (nothing has changed them yet)."""
    row = await session.scalar(
        select(TranscriptionVersion).where(
            TranscriptionVersion.transcription_id == transcription_id,
            TranscriptionVersion.version == version,
        )
    )
    if row is not None:
        return dict(row.snapshot)
    if version == 1 and await current_version(session, transcription_id) is None:
        speakers = await session.scalars(
            select(Speaker).where(Speaker.transcription_id == transcription_id)
        )
        return {
            "segments": [segment_dict(s) for s in await _segments(session, transcription_id)],
            "speakers": [
                {"label": p.label, "display_name": p.display_name}
                for p in sorted(speakers, key=lambda p: p.label)
            ],
        }
    raise NotFound(f"No version {version} of this transcript", code="version_not_found")


async def record_run(
    session: AsyncSession, transcription_id: uuid.UUID, version: int, run: dict[str, Any]
) -> None:
    """Keep with a version what produced it (engine, model, options, language, metrics): the
    transcription row only holds the current version's."""
    await session.execute(
        text(
            "UPDATE transcription_version SET snapshot = snapshot || "
            "jsonb_build_object('run', CAST(:run AS jsonb)) "
            "WHERE transcription_id = :tid AND version = :version"
        ),
        {"run": orjson.dumps(run).decode(), "tid": transcription_id, "version": version},
    )


async def read_version(
    session: AsyncSession, user: User, transcription_id: uuid.UUID, version: int
) -> dict[str, Any]:
    from verbatim.transcriptions.service import get_transcription

    transcription = await get_transcription(session, user, transcription_id)
    snapshot = await version_snapshot(session, transcription.id, version)
    meta = await session.execute(
        select(
            TranscriptionVersion.kind,
            TranscriptionVersion.author_id,
            TranscriptionVersion.summary,
            TranscriptionVersion.created_at,
        ).where(
            TranscriptionVersion.transcription_id == transcription.id,
            TranscriptionVersion.version == version,
        )
    )
    found = meta.first()
    current = await current_version(session, transcription.id) or 1
    segments = snapshot.get("segments", [])
    return {
        "version": version,
        "current": version == current,
        "kind": found.kind if found else VersionKind.engine,
        "author_id": found.author_id if found else None,
        "summary": found.summary if found else "as transcribed",
        "created_at": found.created_at if found else transcription.completed_at,
        "run": snapshot.get("run"),
        "text": " ".join(s["text"].strip() for s in segments if s["text"].strip()),
        "speakers": snapshot.get("speakers", []),
        "segments": segments,
    }


def _timed_words(segments: list[dict[str, Any]]) -> list[tuple[str, float | None, float | None]]:
    """The turns' words with their times; a turn without word timings gives its text's words,
    timed by the turn."""
    out: list[tuple[str, float | None, float | None]] = []
    for seg in segments:
        words = seg.get("words") or []
        if words:
            out += [
                (str(w["word"]).strip(), w.get("start"), w.get("end"))
                for w in words
                if str(w.get("word", "")).strip()
            ]
        else:
            out += [(token, seg.get("start"), seg.get("end")) for token in seg["text"].split()]
    return out


def _span(segments: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    if not segments:
        return None, None
    return min(s["start"] for s in segments), max(s["end"] for s in segments)


async def diff_versions(
    session: AsyncSession, user: User, transcription_id: uuid.UUID, older: int, newer: int
) -> dict[str, Any]:
    """What changed from version `older` to `newer`: turns replaced, inserted or deleted, each
    with a word-level diff whose runs carry their times (old words' times for equal and
    deleted runs, new words' for inserted ones)."""
    from verbatim.transcriptions.service import get_transcription

    transcription = await get_transcription(session, user, transcription_id)
    a = (await version_snapshot(session, transcription.id, older))["segments"]
    b = (await version_snapshot(session, transcription.id, newer))["segments"]
    key_a = [(s.get("speaker"), s["text"]) for s in a]
    key_b = [(s.get("speaker"), s["text"]) for s in b]
    changes: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(None, key_a, key_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        from_text = " ".join(s["text"] for s in a[i1:i2])
        to_text = " ".join(s["text"] for s in b[j1:j2])
        from_start, from_end = _span(a[i1:i2])
        to_start, to_end = _span(b[j1:j2])
        changes.append(
            {
                "op": op,
                "from_segments": list(range(i1, i2)),
                "to_segments": list(range(j1, j2)),
                "from_text": from_text,
                "to_text": to_text,
                "from_start": from_start,
                "from_end": from_end,
                "to_start": to_start,
                "to_end": to_end,
                "words": timed_word_diff(_timed_words(a[i1:i2]), _timed_words(b[j1:j2])),
            }
        )
    return {"from_version": older, "to_version": newer, "changes": changes}


def timed_word_diff(
    old: list[tuple[str, float | None, float | None]],
    new: list[tuple[str, float | None, float | None]],
) -> list[dict[str, Any]]:
    """Runs of equal, deleted and inserted words (compared without case and punctuation at
    their edges), each with the start of its first word and the end of its last."""

    def norm(word: str) -> str:
        return word.strip(".,!?;:\"'").lower()

    a, b = [norm(w) for w, _, _ in old], [norm(w) for w, _, _ in new]
    out: list[dict[str, Any]] = []

    def run(op: str, words: list[tuple[str, float | None, float | None]]) -> None:
        out.append(
            {
                "op": op,
                "text": " ".join(w for w, _, _ in words),
                "start": words[0][1],
                "end": words[-1][2],
            }
        )

    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            run("equal", old[i1:i2])
            continue
        if i2 > i1:
            run("delete", old[i1:i2])
        if j2 > j1:
            run("insert", new[j1:j2])
    return out


def word_diff(old: str, new: str) -> list[dict[str, str]]:
    a, b = old.split(), new.split()
    out: list[dict[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append({"op": "equal", "text": " ".join(a[i1:i2])})
            continue
        if i2 > i1:
            out.append({"op": "delete", "text": " ".join(a[i1:i2])})
        if j2 > j1:
            out.append({"op": "insert", "text": " ".join(b[j1:j2])})
    return out
