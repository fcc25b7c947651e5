"""The two files a completed transcription keeps in storage, under `{tenant_id}/{id}/`:
`raw_transcript.json` (everything the run produced) and `agent_optimized.json` (the agent JSON).

They are derived from the database, which stays the source of truth (decision 0025):
- written after the completing transaction committed (the job's `after_commit`, an edit's
  background task), so a failed write never loses a transcript;
- checked on read: the raw file carries a `state` tag (version, completion time, speaker names);
  a missing or stale pair is rebuilt from the rows and written again before it is served;
- written under a transaction-scoped advisory lock per transcription, agent file first and raw
  file last, so two writers never leave a current raw file next to an older agent file.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import Text, cast, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from verbatim.models import (
    Segment,
    Speaker,
    Transcription,
    TranscriptionStatus,
    TranscriptionVersion,
)
from verbatim.storage import ObjectNotFound, Storage

log = structlog.get_logger(__name__)

RAW_NAME = "raw_transcript.json"
AGENT_NAME = "agent_optimized.json"
RAW_SCHEMA_VERSION = 1
JSON = "application/json"


def output_key(tenant_id: uuid.UUID, transcription_id: uuid.UUID, name: str) -> str:
    return f"{tenant_id}/{transcription_id}/{name}"


def output_keys(tenant_id: uuid.UUID, transcription_id: uuid.UUID) -> list[str]:
    return [output_key(tenant_id, transcription_id, n) for n in (RAW_NAME, AGENT_NAME)]


async def _state(session: AsyncSession, transcription: Transcription) -> tuple[int, str]:
    """(current version, tag): the tag changes with every new version, a re-run's completion
    and a speaker's new name, the changes that alter either file."""
    version = await session.scalar(
        select(TranscriptionVersion.version)
        .where(TranscriptionVersion.transcription_id == transcription.id)
        .order_by(TranscriptionVersion.version.desc())
        .limit(1)
    )
    names = (
        await session.execute(
            select(Speaker.label, Speaker.display_name)
            .where(Speaker.transcription_id == transcription.id)
            .order_by(Speaker.label)
        )
    ).all()
    completed = transcription.completed_at.isoformat() if transcription.completed_at else ""
    digest = hashlib.sha256(repr([tuple(n) for n in names]).encode()).hexdigest()[:12]
    current = int(version or 1)
    return current, f"v{current}|{completed}|{digest}"


async def build_raw(session: AsyncSession, transcription: Transcription) -> dict[str, Any]:
    """Everything about the current version: the run's settings, the provider's raw answer,
    every segment with its words, the metrics on the row, the versions so far."""
    version, state = await _state(session, transcription)
    raw_response, metrics, reconciliation = (
        await session.execute(
            select(
                Transcription.raw_response, Transcription.metrics, Transcription.reconciliation
            ).where(Transcription.id == transcription.id)
        )
    ).one()
    # A multi-engine transcription: every engine's run with its raw answer (decision 0024).
    children = (
        await session.execute(
            select(
                Transcription.id,
                Transcription.engine,
                Transcription.model_name,
                Transcription.status,
                Transcription.error_code,
                Transcription.processing_time_s,
                Transcription.raw_response,
            )
            .where(Transcription.parent_id == transcription.id)
            .order_by(Transcription.created_at, Transcription.id)
        )
    ).all()
    rows = (
        await session.execute(
            select(
                Segment.index,
                Segment.start,
                Segment.end,
                Segment.text,
                Segment.speaker,
                Segment.confidence,
                Segment.avg_logprob,
                Segment.no_speech_prob,
                cast(Segment.words, Text),
            )
            .where(Segment.transcription_id == transcription.id)
            .order_by(Segment.index)
        )
    ).all()
    speakers = await session.scalars(
        select(Speaker).where(Speaker.transcription_id == transcription.id).order_by(Speaker.label)
    )
    versions = (
        await session.execute(
            select(
                TranscriptionVersion.version,
                TranscriptionVersion.kind,
                TranscriptionVersion.summary,
                TranscriptionVersion.created_at,
            )
            .where(TranscriptionVersion.transcription_id == transcription.id)
            .order_by(TranscriptionVersion.version)
        )
    ).all()
    t = transcription
    return {
        "schema_version": RAW_SCHEMA_VERSION,
        "state": state,
        "id": str(t.id),
        "tenant_id": str(t.tenant_id),
        "audio_file_id": str(t.audio_file_id),
        "version": version,
        "engine": t.engine,
        "model": t.model_name,
        "model_version": t.model_version,
        "mode": t.mode.value,
        "requested_language": t.requested_language,
        "options": t.options,
        "language": t.language,
        "language_probability": t.language_probability,
        "duration": t.duration,
        "word_count": t.word_count,
        "avg_confidence": t.avg_confidence,
        "processing_time_s": t.processing_time_s,
        "quality": t.quality,
        "provider_job_id": t.provider_job_id,
        "created_at": t.created_at.isoformat(),
        "completed_at": t.completed_at.isoformat() if t.completed_at else None,
        "versions": [
            {"version": v, "kind": str(k), "summary": s, "created_at": c.isoformat()}
            for v, k, s, c in versions
        ],
        "speakers": [
            {
                "label": s.label,
                "display_name": s.display_name,
                "talk_time": s.talk_time,
                "word_count": s.word_count,
            }
            for s in speakers
        ],
        "segments": [
            {
                "index": index,
                "start": start,
                "end": end,
                "text": seg_text,
                "speaker": speaker,
                "confidence": confidence,
                "avg_logprob": avg_logprob,
                "no_speech_prob": no_speech_prob,
                "words": orjson.loads(words or "[]"),
            }
            for (
                index,
                start,
                end,
                seg_text,
                speaker,
                confidence,
                avg_logprob,
                no_speech_prob,
                words,
            ) in rows
        ],
        "raw_response": raw_response,
        # Reconciled transcriptions: the metrics, the alignment's votes and notes, and each
        # engine's run (null / empty for a single engine).
        "metrics": metrics,
        "reconciliation": reconciliation,
        "engines": [
            {
                "transcription_id": str(cid),
                "engine": f"{engine}:{model}",
                "status": str(status),
                "error_code": error_code,
                "processing_time_s": seconds,
                "raw_response": child_raw,
            }
            for cid, engine, model, status, error_code, seconds, child_raw in children
        ],
        "generated_at": datetime.now(UTC).isoformat(),
    }


def _read(storage: Storage, key: str) -> bytes | None:
    try:
        info = storage.info(key)
        return b"".join(storage.read_range(key, 0, info.size - 1)) if info.size else b""
    except ObjectNotFound:
        return None


async def write_outputs(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, transcription_id: uuid.UUID
) -> bytes | None:
    """Write both files from the rows as they are now; returns the raw file's bytes (None when
    the transcription is gone, not completed, or keeps nothing). Safe to repeat."""
    from verbatim.transcriptions.service import render_transcription

    async with sessionmaker() as session, session.begin():
        # One writer per transcription at a time; the state is read under the lock.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 25))"),
            {"k": f"outputs:{transcription_id}"},
        )
        transcription = await session.get(Transcription, transcription_id)
        if (
            transcription is None
            or transcription.status is not TranscriptionStatus.completed
            or transcription.options.get("ephemeral")
        ):
            return None
        agent = await render_transcription(session, transcription, "agent")
        raw = orjson.dumps(await build_raw(session, transcription))
        agent_bytes = agent.content if isinstance(agent.content, bytes) else agent.content.encode()
        tenant_id = transcription.tenant_id
        await asyncio.to_thread(
            storage.put_bytes,
            output_key(tenant_id, transcription_id, AGENT_NAME),
            agent_bytes,
            JSON,
        )
        await asyncio.to_thread(
            storage.put_bytes, output_key(tenant_id, transcription_id, RAW_NAME), raw, JSON
        )
    log.info("outputs_written", transcription_id=str(transcription_id), raw_bytes=len(raw))
    return raw


async def write_outputs_quietly(
    sessionmaker: async_sessionmaker[AsyncSession], storage: Storage, transcription_id: uuid.UUID
) -> None:
    """For background tasks: a failure is logged; the next read rebuilds the files."""
    try:
        await write_outputs(sessionmaker, storage, transcription_id)
    except Exception:
        log.exception("outputs_write_failed", transcription_id=str(transcription_id))


async def ensure_outputs(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: Storage,
    transcription: Transcription,
) -> bytes:
    """The stored raw file, rebuilt first (with the agent file) when missing or stale."""
    _, state = await _state(session, transcription)
    key = output_key(transcription.tenant_id, transcription.id, RAW_NAME)
    stored = await asyncio.to_thread(_read, storage, key)
    if stored is not None:
        try:
            if orjson.loads(stored).get("state") == state:
                return stored
        except orjson.JSONDecodeError:
            pass  # a damaged object: written again below
    log.info("outputs_rebuilt", transcription_id=str(transcription.id), missing=stored is None)
    raw = await write_outputs(sessionmaker, storage, transcription.id)
    if raw is None:  # completed a moment ago, deleted since: the caller's row says otherwise
        raise ObjectNotFound()
    return raw


async def delete_outputs(storage: Storage, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """Remove the files of deleted transcriptions, (tenant_id, transcription_id) pairs; after
    the rows are gone (a failure is logged by delete_objects)."""
    from verbatim.audio.batch import delete_objects

    await delete_objects(storage, [k for t, i in pairs for k in output_keys(t, i)])


async def keys_of_audio(
    session: AsyncSession, audio_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The stored files of every transcription of these audio files, by audio id: read before
    the rows cascade away, removed once the deletion committed."""
    rows = await session.execute(
        select(Transcription.audio_file_id, Transcription.tenant_id, Transcription.id).where(
            Transcription.audio_file_id.in_(audio_ids)
        )
    )
    keys: dict[uuid.UUID, list[str]] = {}
    for audio_id, tenant_id, transcription_id in rows:
        keys.setdefault(audio_id, []).extend(output_keys(tenant_id, transcription_id))
    return keys
