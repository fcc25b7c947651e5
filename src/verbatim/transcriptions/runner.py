"""Running one transcription job in a worker.

Safe to run twice (a stalled job is re-run after its worker died): results are written in one
transaction at the end, replacing whatever an earlier attempt left, and a job already finished
is left alone.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import delete

from verbatim.db import session_scope
from verbatim.engines.base import EngineError, EngineResult, TranscribeOptions
from verbatim.engines.models import resolve_model
from verbatim.jobs.service import defer, user_at_running_limit
from verbatim.models import (
    AudioFile,
    Job,
    JobStatus,
    Segment,
    Transcription,
    TranscriptionStatus,
)
from verbatim.models.base import utcnow
from verbatim.models.job import TERMINAL
from verbatim.services import Services
from verbatim.storage import ObjectNotFound, StorageUnavailable, local_copy

log = structlog.get_logger(__name__)

PROGRESS_EVERY_S = 1.0
USER_LIMIT_RECHECK_S = 2.0


class TransientJobError(Exception):
    """Worth another attempt later (engine crash, database blip)."""


class JobCancelled(Exception):
    pass


@dataclass(frozen=True)
class Claim:
    """What a claimed job needs, read while the job row was locked."""

    transcription_id: uuid.UUID
    attempts: int
    storage_key: str
    model_name: str
    options: TranscribeOptions


async def run(services: Services, job_id: uuid.UUID, requeue: object) -> None:
    claim = await _claim(services, job_id, requeue)
    if claim is None:
        return
    structlog.contextvars.bind_contextvars(job_id=str(job_id))
    try:
        result = await _transcribe(services, job_id, claim)
    except JobCancelled:
        log.info("transcription_cancelled")
        return
    except EngineError as exc:
        last_attempt = claim.attempts >= services.settings.job_max_attempts
        if exc.transient and not last_attempt:
            await _record_retry(services, job_id, exc)
            raise TransientJobError(exc.message) from exc
        await _fail(services, job_id, exc.code, exc.message)
        return
    await _complete(services, job_id, claim, result)


async def _claim(services: Services, job_id: uuid.UUID, requeue: object) -> Claim | None:
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in TERMINAL:
            return None  # deleted, cancelled or already done by an earlier run
        if await user_at_running_limit(session, job, services.settings.max_running_per_user):
            job.stage = "waiting_for_user_slot"
            await defer(session, job, requeue, schedule_in=USER_LIMIT_RECHECK_S)
            return None
        transcription = await session.get(Transcription, job.transcription_id, with_for_update=True)
        audio = await session.get(AudioFile, job.audio_file_id) if job.audio_file_id else None
        if transcription is None or audio is None:
            job.transition(JobStatus.running)
            job.transition(JobStatus.failed)
            job.error_code, job.error_message = "audio_missing", "The audio file was deleted"
            return None
        job.transition(JobStatus.running)
        job.attempts += 1
        job.stage = "transcribing"
        job.progress = 0.0
        transcription.status = TranscriptionStatus.running
        return Claim(
            transcription_id=transcription.id,
            attempts=job.attempts,
            storage_key=audio.storage_key,
            model_name=transcription.model_name,
            options=TranscribeOptions(
                language=transcription.requested_language,
                word_timestamps=bool(transcription.options.get("word_timestamps", True)),
                vad_filter=bool(transcription.options.get("vad_filter", False)),
                beam_size=int(transcription.options.get("beam_size", 5)),
            ),
        )


async def _transcribe(services: Services, job_id: uuid.UUID, claim: Claim) -> EngineResult:
    assert services.engine_pool is not None, "this process runs no engine"
    model = resolve_model(claim.model_name, services.settings.models_dir)
    last_update = 0.0

    async def on_progress(done: float, total: float) -> None:
        nonlocal last_update
        now = time.monotonic()
        if now - last_update < PROGRESS_EVERY_S:
            return
        last_update = now
        percent = min(99.0, round(100.0 * done / total, 1)) if total > 0 else 0.0
        if not await _report_progress(services, job_id, percent):
            raise JobCancelled

    try:
        # With S3 this downloads to a temporary file (in a thread), removed afterwards.
        async with (
            local_copy(services.storage, claim.storage_key) as path,
            services.engine_pool.acquire() as engine,
        ):
            return await engine.transcribe(model, str(path), claim.options, on_progress)
    except ObjectNotFound as exc:
        raise EngineError("media_missing", "The stored media is missing") from exc
    except StorageUnavailable as exc:
        raise EngineError("storage_unavailable", exc.message, transient=True) from exc


async def _report_progress(services: Services, job_id: uuid.UUID, percent: float) -> bool:
    """Store progress; False when the job was cancelled meanwhile."""
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status is not JobStatus.running:
            return False
        job.progress = percent
        return True


async def _complete(
    services: Services, job_id: uuid.UUID, claim: Claim, result: EngineResult
) -> None:
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        transcription = await session.get(
            Transcription, claim.transcription_id, with_for_update=True
        )
        if job is None or transcription is None or job.status is not JobStatus.running:
            log.info("transcription_result_discarded", reason="job no longer running")
            return
        # An earlier, interrupted attempt may have left nothing or everything: replace it.
        await session.execute(delete(Segment).where(Segment.transcription_id == transcription.id))
        words_total = 0
        probabilities: list[float] = []
        for index, seg in enumerate(result.segments):
            words = [
                {"start": w.start, "end": w.end, "word": w.word, "probability": w.probability}
                for w in seg.words
            ]
            words_total += len(words)
            probabilities.extend(w.probability for w in seg.words)
            confidence = (
                sum(w.probability for w in seg.words) / len(seg.words) if seg.words else None
            )
            session.add(
                Segment(
                    transcription_id=transcription.id,
                    index=index,
                    start=seg.start,
                    end=seg.end,
                    text=seg.text,
                    confidence=round(confidence, 4) if confidence is not None else None,
                    avg_logprob=seg.avg_logprob,
                    no_speech_prob=seg.no_speech_prob,
                    words=words,
                )
            )
        text = " ".join(s.text for s in result.segments).strip()
        transcription.text = text
        transcription.language = result.language
        transcription.language_probability = round(result.language_probability, 4)
        transcription.duration = result.duration
        transcription.word_count = words_total or len(text.split())
        transcription.avg_confidence = (
            round(sum(probabilities) / len(probabilities), 4) if probabilities else None
        )
        transcription.processing_time_s = round(result.processing_time_s, 3)
        transcription.quality = {
            "real_time_factor": round(result.processing_time_s / result.duration, 4)
            if result.duration
            else None,
            "segments": len(result.segments),
            "mean_avg_logprob": round(
                sum(s.avg_logprob for s in result.segments) / len(result.segments), 4
            )
            if result.segments
            else None,
        }
        transcription.status = TranscriptionStatus.completed
        transcription.completed_at = utcnow()
        transcription.error_code = transcription.error_message = None
        job.transition(JobStatus.completed)
        job.progress = 100.0
        job.stage = "completed"
        job.error_code = job.error_message = None
    log.info(
        "transcription_completed",
        transcription_id=str(claim.transcription_id),
        segments=len(result.segments),
        seconds=round(result.processing_time_s, 2),
    )


async def _record_retry(services: Services, job_id: uuid.UUID, exc: EngineError) -> None:
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is not None and job.status is JobStatus.running:
            job.transition(JobStatus.pending)
            job.stage = "retry_scheduled"
            job.error_code, job.error_message = exc.code, exc.message
    log.warning("transcription_retry_scheduled", code=exc.code)


async def _fail(services: Services, job_id: uuid.UUID, code: str, message: str) -> None:
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in TERMINAL:
            return
        if job.status is JobStatus.pending:
            job.transition(JobStatus.running)
        job.transition(JobStatus.failed)
        job.stage = "failed"
        job.error_code, job.error_message = code, message
        transcription = await session.get(Transcription, job.transcription_id)
        if transcription is not None:
            transcription.status = TranscriptionStatus.failed
            transcription.error_code, transcription.error_message = code, message
    log.warning("transcription_failed", code=code, error=message)
