"""The OpenAI-compatible API's work: map the model, file the request in the caller's library
through the ordinary services (ingest with dedup, a transcription and its queued job), wait for
the job, and answer in the format asked. A request that keeps nothing is deleted once answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import delete, func, select

from verbatim.audio import service as audio_service
from verbatim.audio.batch import delete_objects
from verbatim.audio.ingest import ReceivedFile
from verbatim.audio.store import discard as discard_received
from verbatim.audio.store import transcode_from
from verbatim.db import session_scope
from verbatim.engines.base import ModelRef, ModelUnavailable
from verbatim.engines.models import (
    installed_models,
    is_multilingual,
    resolve_model_async,
)
from verbatim.engines.registry import LOCAL_ENGINE
from verbatim.errors import NotFound
from verbatim.jobs.service import mark_cancelled
from verbatim.models import Job, JobStatus, Segment, Transcription, User
from verbatim.models.job import TERMINAL
from verbatim.openai_api.errors import OpenAIError
from verbatim.openai_api.languages import language_name
from verbatim.openai_api.schemas import AudioRequest
from verbatim.services import Services
from verbatim.transcriptions import service as transcriptions_service
from verbatim.transcriptions.schemas import TranscriptionCreate

log = structlog.get_logger(__name__)

# OpenAI's model names, answered by this server's default model (VERBATIM_DEFAULT_MODEL).
OPENAI_ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
# Job errors that are the input's fault (answered 400); any other failure is a 500.
_INPUT_ERRORS = {"audio_decode_failed", "media_missing", "audio_missing", "language_unsupported"}


@dataclass(frozen=True)
class Started:
    audio_id: uuid.UUID
    audio_is_new: bool
    transcription_id: uuid.UUID
    job_id: uuid.UUID
    store: bool


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    error_code: str | None
    error_message: str | None


class ClientGone(Exception):
    """The client closed the connection while its request waited."""


def model_target(settings_default: str, name: str) -> str:
    """The local model an OpenAI `model` value names: OpenAI's names and engine names mean the
    default model; anything else is a local model name."""
    if name in OPENAI_ALIASES or name == LOCAL_ENGINE:
        return settings_default
    return name


async def resolve(services: Services, req: AudioRequest) -> tuple[str, ModelRef]:
    settings = services.settings
    target = model_target(settings.default_model, req.model)
    try:
        model = await resolve_model_async(target, settings.models_dir)
    except ModelUnavailable as exc:
        raise OpenAIError(
            f"The model '{req.model}' does not exist here ({exc.message})",
            code="model_not_found",
            param="model",
        ) from exc
    multilingual = await asyncio.to_thread(_multilingual, model.path)
    if req.task == "translate" and not multilingual:
        raise OpenAIError(
            f"The model '{req.model}' ({model.name}) is English-only and cannot translate; "
            "name a multilingual model (GET /v1/models)",
            code="model_not_multilingual",
            param="model",
        )
    if req.language not in (None, "en") and not multilingual:
        raise OpenAIError(
            f"The model '{req.model}' ({model.name}) only transcribes English",
            code="unsupported_language",
            param="language",
        )
    return target, model


@functools.lru_cache(maxsize=64)
def _multilingual(path: Any) -> bool:
    return is_multilingual(ModelRef(name=path.name, path=path))


async def start(
    services: Services,
    caller: User,
    received: ReceivedFile,
    req: AudioRequest,
    model_name: str,
) -> Started:
    """Ingest the file (dedup per user) and queue its transcription, in one transaction."""
    settings = services.settings
    async with session_scope(services.sessionmaker) as session:
        user = await session.get(User, caller.id)
        if user is None:  # deleted since it authenticated
            await discard_received(services.storage, received)
            raise OpenAIError("The account no longer exists", code="invalid_api_key", status=401)
        store = req.store if req.store is not None else user.openai_store
        audio, duplicate = await audio_service.ingest(
            session, services.storage, user, received, transcode=transcode_from(settings)
        )
        body = TranscriptionCreate(language=req.language, model=model_name)
        transcription, job = await transcriptions_service.request_transcription(
            session, settings, user, audio.id, body
        )
        transcription.options = {
            **transcription.options,
            "task": req.task,
            "initial_prompt": req.prompt,
            "temperature": req.temperature,
            "stream_segments": req.stream,
            "source": "openai_api",
            # Nothing of it is kept: no search index, deleted once answered.
            "ephemeral": not store,
        }
        started = Started(
            audio_id=audio.id,
            audio_is_new=not duplicate,
            transcription_id=transcription.id,
            job_id=job.id,
            store=store,
        )
    log.info(
        "openai_request_queued",
        task=req.task,
        job_id=str(started.job_id),
        duplicate=duplicate,
        store=store,
        stream=req.stream,
    )
    return started


async def job_outcome(services: Services, job_id: uuid.UUID) -> Outcome | None:
    """The job's status; None while it is neither finished nor gone."""
    async with session_scope(services.autocommit_sessionmaker) as session:
        row = (
            await session.execute(
                select(Job.status, Job.error_code, Job.error_message).where(Job.id == job_id)
            )
        ).one_or_none()
    if row is None:
        return Outcome(JobStatus.cancelled, "job_deleted", "The job was deleted")
    if row.status in TERMINAL:
        return Outcome(row.status, row.error_code, row.error_message)
    return None


async def wait(
    services: Services, request: Request | None, job_id: uuid.UUID, timeout_s: float
) -> Outcome | None:
    """Poll the job until it ends (its Outcome) or the timeout passes (None). Short reads in
    autocommit: the request holds no connection while it waits."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        outcome = await job_outcome(services, job_id)
        if outcome is not None:
            return outcome
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if request is not None and await request.is_disconnected():
            raise ClientGone
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.5)


def failure(started: Started, outcome: Outcome) -> OpenAIError:
    job = {"job_id": str(started.job_id)} if started.store else {}
    if outcome.status is JobStatus.cancelled:
        return OpenAIError(
            "The transcription was cancelled before it finished",
            code="job_cancelled",
            status=409,
            extra=job,
        )
    code = outcome.error_code or "transcription_failed"
    return OpenAIError(
        f"The transcription failed: {outcome.error_message or code}",
        code=code,
        status=400 if code in _INPUT_ERRORS else 500,
        extra=job,
    )


def timed_out(started: Started, timeout_s: float) -> OpenAIError:
    if not started.store:
        return OpenAIError(
            f"The transcription did not finish within {timeout_s:g} s; it was cancelled and "
            "nothing was kept (send the request with store=true to keep it and poll the job)",
            code="timeout",
            status=504,
        )
    return OpenAIError(
        f"The transcription is still running after {timeout_s:g} s. It continues in your "
        f"library: poll GET /api/v1/jobs/{started.job_id}, then read "
        f"GET /api/v1/transcriptions/{started.transcription_id}",
        code="job_timeout",
        status=504,
        extra={
            "job_id": str(started.job_id),
            "transcription_id": str(started.transcription_id),
        },
    )


def library_headers(started: Started) -> dict[str, str]:
    if not started.store:
        return {"x-verbatim-stored": "false"}
    return {
        "x-verbatim-stored": "true",
        "x-verbatim-audio-id": str(started.audio_id),
        "x-verbatim-transcription-id": str(started.transcription_id),
        "x-verbatim-job-id": str(started.job_id),
    }


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


async def answer(services: Services, caller: User, started: Started, req: AudioRequest) -> Response:
    """The finished transcription in the response format asked."""
    headers = library_headers(started)
    async with session_scope(services.sessionmaker) as session:
        transcription = await session.get(Transcription, started.transcription_id)
        if transcription is None:
            raise OpenAIError("The transcription was deleted", code="job_cancelled", status=409)
        text = transcription.text or ""
        if req.response_format in ("srt", "vtt"):
            rendered = await transcriptions_service.render_source(
                await transcriptions_service.export_transcription(
                    session, caller, transcription.id, req.response_format
                )
            )
            content = rendered.content
            body = content.decode() if isinstance(content, bytes) else content
            return PlainTextResponse(body, headers=headers)
        if req.response_format == "text":
            return PlainTextResponse(text + "\n", headers=headers)
        duration = float(transcription.duration or 0.0)
        usage = {"type": "duration", "seconds": math.ceil(duration)}
        if req.response_format == "json":
            return JSONResponse({"text": text, "usage": usage}, headers=headers)
        rows = (
            await session.execute(
                select(
                    Segment.index,
                    Segment.start,
                    Segment.end,
                    Segment.text,
                    Segment.avg_logprob,
                    Segment.no_speech_prob,
                    Segment.words,
                )
                .where(Segment.transcription_id == transcription.id)
                .order_by(Segment.index)
            )
        ).all()
        language = transcription.language
    verbose: dict[str, Any] = {
        "task": req.task,
        "language": language_name("en" if req.task == "translate" else language),
        "duration": duration,
        "text": text,
    }
    granularities = req.granularities or frozenset({"segment"})
    if "segment" in granularities:
        temperature = req.temperature or 0.0
        verbose["segments"] = [
            {
                "id": index,
                "seek": int(start * 100),  # in 10 ms frames, as Whisper counts
                "start": start,
                "end": end,
                "text": seg_text,
                "tokens": [],
                "temperature": temperature,
                "avg_logprob": avg_logprob,
                "compression_ratio": _compression_ratio(seg_text),
                "no_speech_prob": no_speech_prob,
            }
            for index, start, end, seg_text, avg_logprob, no_speech_prob, _ in rows
        ]
    if "word" in granularities:
        verbose["words"] = [
            {"word": str(w["word"]).strip(), "start": w["start"], "end": w["end"]}
            for *_, words in rows
            for w in words or []
        ]
    verbose["usage"] = usage
    return Response(orjson.dumps(verbose), media_type="application/json", headers=headers)


async def discard(services: Services, caller: User, started: Started) -> None:
    """Delete what the request made: its jobs, its transcription, and its audio if the request
    brought it (a file already in the library stays). Cancels the job if it still runs."""
    keys: list[str] = []
    async with session_scope(services.sessionmaker) as session:
        jobs = await session.scalars(
            select(Job).where(Job.transcription_id == started.transcription_id).with_for_update()
        )
        for job in jobs:
            if job.status not in TERMINAL:
                await mark_cancelled(session, job)
        await session.flush()
        await session.execute(
            delete(Job)
            .where(Job.transcription_id == started.transcription_id)
            .execution_options(synchronize_session=False)
        )
        transcription = await session.get(Transcription, started.transcription_id)
        if transcription is not None:
            await session.delete(transcription)
            await session.flush()
        if started.audio_is_new:
            others = await session.scalar(
                select(func.count()).where(Transcription.audio_file_id == started.audio_id)
            )
            if not others:
                with contextlib.suppress(NotFound):  # deleted meanwhile
                    keys.append(await audio_service.delete_audio(session, caller, started.audio_id))
    await delete_objects(services.storage, keys)
    log.info("openai_request_discarded", job_id=str(started.job_id), media_deleted=bool(keys))


def list_models(services: Services) -> list[dict[str, Any]]:
    """GET /v1/models: OpenAI's names (mapped to the default model), the engines, and each
    installed local model. `created` is the model folder's modification time."""
    settings = services.settings
    entries: list[dict[str, Any]] = []
    for alias in OPENAI_ALIASES:
        entries.append(_model(alias, 0, f"alias of {settings.default_model}"))
    # The local engine's name means its default model. Cloud engines are used through the REST
    # API (`engine` on POST /api/v1/audio/{id}/transcriptions), not through this endpoint.
    entries.append(_model(LOCAL_ENGINE, 0, f"engine; default model {settings.default_model}"))
    for ref in installed_models(settings.models_dir):
        name, path = ref.name, ref.path
        if path is None:
            continue
        try:
            created = int(path.stat().st_mtime)
        except OSError:
            created = 0
        entries.append(_model(name, created, "local model", multilingual=_multilingual(path)))
    return entries


def _model(
    name: str, created: int, kind: str, *, multilingual: bool | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "verbatim",
        "description": kind,
    }
    if multilingual is not None:
        entry["multilingual"] = multilingual
    return entry
