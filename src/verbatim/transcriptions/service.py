"""Transcriptions: request (row + job in one transaction), read, export, delete."""

from __future__ import annotations

import asyncio
import gc
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, Text, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only, selectinload

from verbatim.audio.delivery import MediaExpired
from verbatim.audio.service import get_audio
from verbatim.audit import service as audit
from verbatim.config import Settings
from verbatim.engines.base import ModelRef, ModelUnavailable
from verbatim.engines.models import resolve_model_async
from verbatim.engines.registry import ENGINES, get_spec
from verbatim.errors import Conflict, NotFound, ValidationFailed
from verbatim.jobs.service import defer, mark_cancelled
from verbatim.kit.fastjson import raw_json
from verbatim.kit.pagination import (
    KeysetPage,
    PageRequest,
    check_window,
    keyset_paginate,
)
from verbatim.models import (
    AudioFile,
    Job,
    JobType,
    Mode,
    Segment,
    Transcription,
    TranscriptionStatus,
    User,
)
from verbatim.models.job import TERMINAL
from verbatim.models.topic import AssignmentStatus, Topic, TranscriptionTopic
from verbatim.quotas import service as quotas
from verbatim.speakers.service import speaker_names, transcription_speakers
from verbatim.tenancy.scope import tenant_of, visible
from verbatim.transcriptions import export, export_cache
from verbatim.transcriptions.schemas import TranscriptionCreate

# Exports of more segments than this render in a thread, off the event loop (a few ms inline).
RENDER_INLINE_SEGMENTS = 200
EXPORT_FETCH_ROWS = 1000
_CLOUD_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$")


async def check_request(settings: Settings, body: TranscriptionCreate) -> ModelRef:
    """The model a request will use; 422 for an engine, model, mode or language this server
    lacks (or an engine it was not configured for). The local model lookup runs off the event
    loop and is cached (engines.models)."""
    spec = get_spec(body.engine)
    if spec is None:
        raise ValidationFailed(
            f"Unknown engine {body.engine!r}",
            code="engine_unavailable",
            details={"engine": body.engine, "supported": list(ENGINES)},
        )
    reason = spec.unavailable(settings)
    if reason is not None:
        raise ValidationFailed(
            f"The {spec.name} engine is not configured on this server",
            code="engine_unavailable",
            details={"engine": spec.name, "reason": reason},
        )
    if body.mode is Mode.dialogue and not spec.dialogue:
        raise ValidationFailed(
            f"The {body.engine} engine cannot tell speakers apart",
            code="mode_unsupported",
            details={"supported": [Mode.mono.value]},
        )
    check_dialogue_options(body)
    if spec.kind == "cloud":
        if body.mode is Mode.dialogue and body.diarization == "channels":
            raise ValidationFailed(
                f"The {spec.name} engine labels speakers by voice only",
                code="diarization_unsupported",
                details={"supported": ["auto", "off"]},
            )
        limit = spec.max_speakers
        wanted = max(body.num_speakers or 0, body.min_speakers or 0)
        if body.mode is Mode.dialogue and limit is not None and wanted > limit:
            # Refused up front: the provider would label fewer speakers than were asked for.
            raise ValidationFailed(
                f"The {spec.name} engine labels at most {limit} speakers",
                code="diarization_unsupported",
                details={"max_speakers": limit},
            )
        name = body.model or spec.default_model(settings)
        if not _CLOUD_MODEL.match(name):
            raise ValidationFailed(f"Not a model name: {name!r}", code="model_unavailable")
        return ModelRef(name=name, version=spec.name)
    model_name = body.model or settings.default_model
    try:
        # Refused now, not after a job failed: nothing is downloaded at run time.
        model = await resolve_model_async(model_name, settings.models_dir)
    except ModelUnavailable as exc:
        raise ValidationFailed(exc.message, code="model_unavailable") from exc
    if body.language and model.name.endswith(".en") and body.language != "en":
        raise ValidationFailed(
            f"Model {model.name} only transcribes English", code="language_unsupported"
        )
    return ModelRef(name=model_name, path=model.path, version=model.version)


def check_dialogue_options(body: TranscriptionCreate) -> None:
    """422 for speaker options that contradict each other or the mode (ranges are checked by
    the schema: 1-20)."""
    counts = {
        "num_speakers": body.num_speakers,
        "min_speakers": body.min_speakers,
        "max_speakers": body.max_speakers,
    }
    given = [name for name, value in counts.items() if value is not None]
    if body.mode is not Mode.dialogue:
        if given or body.diarization not in (None, "off"):
            raise ValidationFailed(
                "Speaker options need mode 'dialogue'",
                code="dialogue_options_need_dialogue_mode",
                details={"options": given + (["diarization"] if body.diarization else [])},
            )
        return
    if body.diarization == "off" and given:
        raise ValidationFailed(
            "Speaker counts mean nothing with diarization 'off'",
            code="speaker_range_invalid",
            details={"options": given},
        )
    low, high = body.min_speakers, body.max_speakers
    if low is not None and high is not None and low > high:
        raise ValidationFailed(
            f"min_speakers ({low}) is greater than max_speakers ({high})",
            code="speaker_range_invalid",
            details=counts,
        )
    n = body.num_speakers
    if n is not None and ((low is not None and n < low) or (high is not None and n > high)):
        raise ValidationFailed(
            f"num_speakers ({n}) is outside min_speakers..max_speakers",
            code="speaker_range_invalid",
            details=counts,
        )


def transcription_options(body: TranscriptionCreate) -> dict[str, Any]:
    options: dict[str, Any] = {
        "word_timestamps": body.word_timestamps,
        "vad_filter": body.vad_filter,
        "beam_size": body.beam_size,
    }
    if body.mode is Mode.dialogue:
        options["diarization"] = body.diarization or "auto"
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            if getattr(body, name) is not None:
                options[name] = getattr(body, name)
    return options


async def request_transcription(
    session: AsyncSession,
    settings: Settings,
    user: User,
    audio_id: uuid.UUID,
    body: TranscriptionCreate,
) -> tuple[Transcription, Job]:
    audio = await get_audio(session, user, audio_id)
    if audio.media_deleted_at is not None:
        raise MediaExpired()
    model = await check_request(settings, body)
    if body.mode is Mode.dialogue and body.diarization == "channels" and audio.channels == 1:
        raise ValidationFailed(
            "diarization 'channels' needs a file with two or more channels; this one is mono",
            code="channels_need_stereo",
            details={"channels": audio.channels},
        )
    await quotas.check_job(
        session, settings, tenant_of(user), audio_seconds=audio.duration or 0.0, engine=body.engine
    )
    transcription = Transcription(
        user_id=user.id,
        tenant_id=tenant_of(user),
        audio_file_id=audio.id,
        requested_language=body.language,
        mode=body.mode,
        engine=body.engine,
        model_name=model.name,
        model_version=model.version,
        options=transcription_options(body),
        duration=audio.duration,
    )
    session.add(transcription)
    await session.flush()
    job = Job(
        user_id=user.id,
        tenant_id=tenant_of(user),
        type=JobType.transcription,
        audio_file_id=audio.id,
        transcription_id=transcription.id,
        stage="queued",
    )
    session.add(job)
    await session.flush()
    from verbatim.transcriptions.tasks import run_cloud_transcription, run_transcription

    spec = get_spec(body.engine)
    cloud = spec is not None and spec.kind == "cloud"
    await defer(session, job, run_cloud_transcription if cloud else run_transcription)
    return transcription, job


def owned_transcriptions(user: User) -> Select[Transcription]:
    return select(Transcription).where(visible(Transcription, user))


async def get_transcription(
    session: AsyncSession, user: User, transcription_id: uuid.UUID, *, with_segments: bool = False
) -> Transcription:
    stmt = owned_transcriptions(user).where(Transcription.id == transcription_id)
    if with_segments:
        stmt = stmt.options(selectinload(Transcription.segments))
    transcription = await session.scalar(stmt)
    if transcription is None:
        raise NotFound("Transcription not found", code="transcription_not_found")
    return transcription


async def segment_rows(
    session: AsyncSession,
    transcription_id: uuid.UUID,
    *,
    limit: int,
    offset: int,
    words: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """One page of a transcription's segments, in order, for answers written by kit.fastjson: plain
    rows, each segment's words
    spliced in as the JSON text PostgreSQL keeps (never decoded here). For 15,000 words the body
    took 2 ms of CPU instead of 180 ms through SegmentOut validation (decision 0010)."""
    check_window(max(limit, 1), offset)
    total = await session.scalar(
        select(func.count()).where(Segment.transcription_id == transcription_id)
    )
    items: list[dict[str, Any]] = []
    if limit:
        stmt = (
            select(
                Segment.index,
                Segment.start,
                Segment.end,
                Segment.text,
                Segment.speaker,
                Segment.confidence,
                cast(Segment.words, Text) if words else literal_column("NULL"),
            )
            .where(Segment.transcription_id == transcription_id)
            .order_by(Segment.index)
            .limit(limit)
            .offset(offset)
        )
        empty = raw_json("[]")
        rows = (await session.execute(stmt)).all()
        names = (
            await speaker_names(session, transcription_id)
            if any(row.speaker for row in rows)
            else {}
        )
        items = [
            {
                "index": index,
                "start": start,
                "end": end,
                "text": text,
                "speaker": speaker,
                "speaker_name": names.get(speaker, speaker) if speaker else None,
                "confidence": confidence,
                "words": raw_json(words_json) if words else empty,
            }
            for index, start, end, text, speaker, confidence, words_json in rows
        ]
    return items, int(total or 0)


# What a list item shows (TranscriptionSummary): not the text, the quality metrics, the owners.
LIST_COLUMNS = (
    Transcription.audio_file_id,
    Transcription.status,
    Transcription.requested_language,
    Transcription.language,
    Transcription.language_probability,
    Transcription.mode,
    Transcription.engine,
    Transcription.model_name,
    Transcription.model_version,
    Transcription.options,
    Transcription.parent_id,
    Transcription.avg_confidence,
    Transcription.word_count,
    Transcription.duration,
    Transcription.processing_time_s,
    Transcription.error_code,
    Transcription.error_message,
    Transcription.created_at,
    Transcription.completed_at,
)


async def list_transcriptions(
    session: AsyncSession,
    user: User,
    *,
    status: TranscriptionStatus | None,
    audio_file_id: uuid.UUID | None,
    language: str | None,
    page: PageRequest,
) -> KeysetPage:
    """Newest first, a keyset page at a time (ix_transcription_user[_status|_language]_created;
    by audio file, its foreign-key index)."""
    # One engine's run of a multi-engine transcription is part of its parent, not listed.
    stmt = (
        owned_transcriptions(user)
        .where(Transcription.parent_id.is_(None))
        .options(load_only(*LIST_COLUMNS))
    )
    if status is not None:
        stmt = stmt.where(Transcription.status == status)
    if audio_file_id is not None:
        stmt = stmt.where(Transcription.audio_file_id == audio_file_id)
    if language is not None:
        stmt = stmt.where(Transcription.language == language.lower())
    return await keyset_paginate(session, stmt, page, Transcription.created_at, Transcription.id)


async def delete_transcription(
    session: AsyncSession, user: User, transcription_id: uuid.UUID
) -> uuid.UUID:
    """Returns the tenant id: the caller removes the stored files once committed."""
    transcription = await get_transcription(session, user, transcription_id)
    jobs = await session.scalars(
        select(Job)
        .where(Job.transcription_id == transcription.id, Job.status.not_in(TERMINAL))
        .with_for_update()
    )
    for job in jobs:
        await mark_cancelled(session, job)
    tenant_id = transcription.tenant_id
    await session.delete(transcription)
    await session.flush()
    await audit.record_for(session, user, audit.Action.delete, "transcription", transcription_id)
    return tenant_id


async def export_transcription(
    session: AsyncSession,
    user: User,
    transcription_id: uuid.UUID,
    fmt: str,
    version: int | None = None,
) -> ExportSource:
    """What an export is made of, read fresh (render it with `render_source`); its `etag`
    answers If-None-Match before any layout work."""
    fmt = check_format(fmt)
    transcription = await get_transcription(session, user, transcription_id)
    if transcription.status is not TranscriptionStatus.completed:
        raise Conflict(
            f"The transcription is {transcription.status.value}, not completed",
            code="transcription_not_ready",
        )
    return await export_source(session, transcription, fmt, version)


def check_format(fmt: str) -> str:
    fmt = fmt.lower()
    if fmt not in export.FORMATS:
        raise ValidationFailed(
            f"Unknown format {fmt!r}",
            code="unsupported_format",
            details={"supported": list(export.FORMATS)},
        )
    return fmt


@dataclass(frozen=True)
class ExportSource:
    """An export's inputs: the document header and its segment rows, in one format."""

    header: export.ExportDocument
    rows: list[tuple[Any, ...]]
    fmt: str
    key: str  # export_cache.key_of(header, rows, fmt)

    @property
    def etag(self) -> str:
        return f'"{self.fmt}-{self.key}"'


async def export_source(
    session: AsyncSession, transcription: Transcription, fmt: str, version: int | None = None
) -> ExportSource:
    """The current state (or version `version`'s snapshot) of a completed transcription, as
    an export reads it; the caller checked access."""
    audio = await session.get(AudioFile, transcription.audio_file_id)
    if version is not None:
        segments, speakers_out = await _version_rows(session, transcription.id, version)
    else:
        segments, speakers_out = await _current_rows(session, transcription.id, fmt)
    topics = await _export_topics(session, transcription.id) if fmt == "agent" else ()
    header = export.ExportDocument(
        id=str(transcription.id),
        confidence=transcription.avg_confidence,
        topics=topics,
        title=audio.original_filename if audio else "transcript",
        language=transcription.language,
        duration=transcription.duration,
        model=transcription.model_name,
        text=transcription.text or "",
        segments=(),
        speakers=speakers_out,
    )
    if len(segments) > RENDER_INLINE_SEGMENTS:
        # Hashing megabytes of words is milliseconds of CPU: off the event loop, like the layout.
        key = await asyncio.to_thread(export_cache.key_of, header, segments, fmt)
    else:
        key = export_cache.key_of(header, segments, fmt)
    return ExportSource(header, segments, fmt, key)


async def render_source(source: ExportSource) -> export.Rendered:
    if len(source.rows) <= RENDER_INLINE_SEGMENTS:
        return _render(source.header, source.rows, source.fmt)
    # Long transcripts: the same inputs were maybe laid out already (export_cache), else
    # in a thread, since a multi-hour transcript would stall every other request.
    cached = export_cache.renders.get(source.key)
    if cached is not None:
        return cached
    rendered = await asyncio.to_thread(_render, source.header, source.rows, source.fmt)
    export_cache.renders.put(source.key, rendered)
    return rendered


async def render_transcription(
    session: AsyncSession, transcription: Transcription, fmt: str, version: int | None = None
) -> export.Rendered:
    """Render the current state (or version `version`'s snapshot) of a completed transcription;
    the caller checked access. Also used by the job that writes the stored outputs."""
    return await render_source(await export_source(session, transcription, fmt, version))


async def _current_rows(
    session: AsyncSession, transcription_id: uuid.UUID, fmt: str
) -> tuple[list[tuple[Any, ...]], tuple[export.ExportSpeaker, ...]]:
    # Plain rows with the words as JSON text: decoding them, building the document and
    # rendering it all happen in one call, in a thread for long transcripts.
    stmt = (
        select(
            Segment.start,
            Segment.end,
            Segment.text,
            Segment.speaker,
            Segment.confidence,
            # Words only for the formats that show them: TXT and CSV fetch a tenth of the bytes.
            cast(Segment.words, Text) if fmt in export.WORD_FORMATS else literal_column("NULL"),
        )
        .where(Segment.transcription_id == transcription_id)
        .order_by(Segment.index)
    )
    # Streamed in batches, so even fetching a multi-hour transcript yields to the loop.
    segments: list[tuple[Any, ...]] = []
    result = await session.stream(stmt.execution_options(yield_per=EXPORT_FETCH_ROWS))
    async for batch in result.partitions():
        segments += [tuple(row) for row in batch]
    speakers = await transcription_speakers(session, transcription_id)
    names = {s.label: s.display_name or s.label for s in speakers}
    if names:
        # Exports show names: the rows carry labels, renamed speakers show their new name.
        segments = [(*row[:3], names.get(row[3], row[3]), *row[4:]) for row in segments]
    return segments, tuple(
        export.ExportSpeaker(
            label=s.label,
            name=s.display_name or s.label,
            talk_time=s.talk_time,
            word_count=s.word_count,
        )
        for s in speakers
    )


async def _version_rows(
    session: AsyncSession, transcription_id: uuid.UUID, version: int
) -> tuple[list[tuple[Any, ...]], tuple[export.ExportSpeaker, ...]]:
    """A version's snapshot as export rows; speakers' talk time is counted from its turns."""
    from verbatim.versions.service import version_snapshot

    snapshot = await version_snapshot(session, transcription_id, version)
    names = {
        str(p["label"]): str(p.get("display_name") or p["label"])
        for p in snapshot.get("speakers", [])
    }
    talk: dict[str, float] = {}
    words: dict[str, int] = {}
    rows: list[tuple[Any, ...]] = []
    for seg in snapshot.get("segments", []):
        label = seg.get("speaker")
        if label:
            talk[label] = talk.get(label, 0.0) + max(seg["end"] - seg["start"], 0.0)
            words[label] = words.get(label, 0) + len(seg.get("words") or [])
        rows.append(
            (
                seg["start"],
                seg["end"],
                seg["text"],
                names.get(label, label) if label else None,
                seg.get("confidence"),
                orjson.dumps(seg.get("words") or []),
            )
        )
    speakers = tuple(
        export.ExportSpeaker(
            label=label,
            name=names.get(label, label),
            talk_time=round(talk.get(label, 0.0), 3),
            word_count=words.get(label, 0),
        )
        for label in sorted(set(names) | set(talk))
    )
    return rows, speakers


async def _export_topics(
    session: AsyncSession, transcription_id: uuid.UUID
) -> tuple[tuple[str, str], ...]:
    """Accepted topics first, then suggestions not yet reviewed; never rejected ones."""
    rows = await session.execute(
        select(Topic.name, TranscriptionTopic.status)
        .join(Topic, Topic.id == TranscriptionTopic.topic_id)
        .where(
            TranscriptionTopic.transcription_id == transcription_id,
            TranscriptionTopic.status != AssignmentStatus.rejected,
        )
        .order_by(
            (TranscriptionTopic.status == AssignmentStatus.accepted).desc(),
            TranscriptionTopic.ai_confidence.desc().nulls_first(),
            Topic.name,
        )
    )
    return tuple((name, status.value) for name, status in rows)


# Formats that show word timings; the others never decode a segment's words (issue 15).
def _render(
    header: export.ExportDocument, rows: list[tuple[Any, ...]], fmt: str
) -> export.Rendered:
    # Tens of thousands of small objects are made and dropped here: the cyclic collector
    # would walk them all several times over (a third of an SRT's time); none form cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return export.render_rows(header, rows, fmt)
    finally:
        if collecting:
            gc.enable()
