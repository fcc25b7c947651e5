"""Running one download job in a worker: fetch in a child process, then the upload's ingest path.

Safe to run twice (a stalled job is re-run after its worker died): a job already finished is
left alone, the temporary folder of each attempt is removed, and ingest deduplicates by checksum.
What the job writes at the end (audio file, job status, chained transcription) is one transaction.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from verbatim.audio.ingest import ReceivedFile
from verbatim.audio.service import ingest
from verbatim.audio.store import sha256_of, transcode_from
from verbatim.db import session_scope
from verbatim.downloads.fetch import FetchedMedia, FetchFailed, FetchRequest, fetch
from verbatim.errors import AppError, MediaTooLong, UnsupportedMedia
from verbatim.jobs.service import defer, user_at_running_limit
from verbatim.models import Job, JobStatus, SourceType, User
from verbatim.models.job import TERMINAL
from verbatim.services import Services
from verbatim.transcriptions import service as transcriptions
from verbatim.transcriptions.schemas import TranscriptionCreate

log = structlog.get_logger(__name__)

PROGRESS_EVERY_S = 1.0
USER_LIMIT_RECHECK_S = 2.0
WORKDIR_PREFIX = "download-"


class TransientJobError(Exception):
    """Worth another attempt later (a 5xx, a reset connection, a database blip)."""


class JobCancelled(Exception):
    pass


@dataclass(frozen=True)
class Claim:
    url: str
    transcribe: dict[str, Any] | None
    attempts: int


async def run(services: Services, job_id: uuid.UUID, requeue: object) -> None:
    claim = await _claim(services, job_id, requeue)
    if claim is None:
        return
    structlog.contextvars.bind_contextvars(job_id=str(job_id))
    settings = services.settings
    await asyncio.to_thread(sweep_stale_workdirs, settings.tmp_dir, settings.download_timeout_s)
    workdir = settings.tmp_dir / f"{WORKDIR_PREFIX}{uuid.uuid4().hex}"
    workdir.mkdir(parents=True)
    request = FetchRequest(
        url=claim.url,
        workdir=str(workdir),
        max_bytes=settings.download_max_bytes,
        max_duration_s=settings.download_max_duration_s,
        wall_time_s=settings.download_timeout_s,
        allow_networks=tuple(str(n) for n in settings.download_allow_networks),
    )
    failure: FetchFailed | None = None
    try:
        media = await fetch(request, _progress_reporter(services, job_id))
        received = await asyncio.to_thread(_received_file, media)
        await _complete(services, job_id, claim, media, received, workdir)
    except JobCancelled:
        log.info("download_cancelled")
    except FetchFailed as exc:
        failure = exc
    finally:
        # Before the final status is written, so a finished job never leaves files behind.
        await _remove(workdir)
    if failure is None:
        return
    if failure.transient and claim.attempts < settings.job_max_attempts:
        await _record_retry(services, job_id, failure)
        raise TransientJobError(failure.message) from failure
    await _fail(services, job_id, failure.code, failure.message)


async def _remove(workdir: Path) -> None:
    await asyncio.to_thread(shutil.rmtree, workdir, True)


async def _claim(services: Services, job_id: uuid.UUID, requeue: object) -> Claim | None:
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in TERMINAL:
            return None  # cancelled, or done by an earlier run
        if await user_at_running_limit(session, job, services.settings.max_running_per_user):
            job.stage = "waiting_for_user_slot"
            await defer(session, job, requeue, schedule_in=USER_LIMIT_RECHECK_S)
            return None
        job.transition(JobStatus.running)
        job.attempts += 1
        job.stage = "downloading"
        job.progress = 0.0
        job.error_code = job.error_message = None
        return Claim(
            url=str(job.payload["url"]),
            transcribe=job.payload.get("transcribe"),
            attempts=job.attempts,
        )


def _progress_reporter(services: Services, job_id: uuid.UUID) -> Any:
    last_update = 0.0

    async def on_progress(downloaded: int, total: int | None) -> None:
        nonlocal last_update
        now = time.monotonic()
        if now - last_update < PROGRESS_EVERY_S:
            return
        last_update = now
        if not await _report_progress(services, job_id, downloaded, total):
            raise JobCancelled  # fetch() kills the download process on the way out

    return on_progress


async def _report_progress(
    services: Services, job_id: uuid.UUID, downloaded: int, total: int | None
) -> bool:
    """Store progress; False when the job was cancelled (or deleted) meanwhile."""
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status is not JobStatus.running:
            return False
        if downloaded != job.detail.get("downloaded_bytes") or total != job.detail.get(
            "total_bytes"
        ):
            if total:
                job.progress = min(99.0, round(100.0 * downloaded / total, 1))
            job.update_detail(downloaded_bytes=downloaded, total_bytes=total)
        return True


def _received_file(media: FetchedMedia) -> ReceivedFile:
    """Hash the downloaded file (in a thread: it can be gigabytes)."""
    path = Path(media.path)
    digest, size = sha256_of(path)
    stem = media.title or "download"
    return ReceivedFile(path=path, size=size, sha256=digest, filename=f"{stem}.{media.ext}")


async def _complete(
    services: Services,
    job_id: uuid.UUID,
    claim: Claim,
    media: FetchedMedia,
    received: ReceivedFile,
    workdir: Path,
) -> None:
    settings = services.settings
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        user = await session.get(User, job.user_id) if job is not None else None
        if job is None or user is None or job.status is not JobStatus.running:
            log.info("download_result_discarded", reason="job no longer running")
            return
        try:
            audio, duplicate = await ingest(
                session,
                services.storage,
                user,
                received,
                source_type=SourceType.download,
                source_url=claim.url,
                platform=media.platform,
                title=media.title,
                max_duration_s=settings.download_max_duration_s,
                transcode=transcode_from(settings),
            )
        except UnsupportedMedia:
            _mark_failed(job, "no_audio_stream", "The downloaded file has no decodable audio")
            return
        except MediaTooLong as exc:
            _mark_failed(job, "media_too_long", exc.message)
            return
        finally:
            await _remove(workdir)  # the media file has been moved into storage, or removed
        detail: dict[str, Any] = {
            "is_duplicate": duplicate,
            "title": media.title,
            "platform": media.platform,
            # Progress messages are throttled: record the final count.
            "downloaded_bytes": received.size,
            "total_bytes": received.size,
        }
        if claim.transcribe is not None:
            try:
                # A savepoint: a refused transcription must not undo the download.
                async with session.begin_nested():
                    transcription, follow_up = await transcriptions.request_transcription(
                        session,
                        settings,
                        user,
                        audio.id,
                        TranscriptionCreate.model_validate(claim.transcribe),
                    )
                job.transcription_id = transcription.id
                detail["transcription_job_id"] = str(follow_up.id)
            except AppError as exc:
                detail["transcription_error"] = {"code": exc.code, "message": exc.message}
        job.audio_file_id = audio.id
        job.progress = 100.0
        job.stage = "completed"
        job.update_detail(**detail)
        job.transition(JobStatus.completed)
    log.info("download_completed", audio_file_id=str(audio.id), duplicate=duplicate)


def _mark_failed(job: Job, code: str, message: str) -> None:
    if job.status is JobStatus.pending:
        job.transition(JobStatus.running)
    job.transition(JobStatus.failed)
    job.stage = "failed"
    job.error_code, job.error_message = code, message
    log.warning("download_failed", code=code, error=message)


async def _fail(services: Services, job_id: uuid.UUID, code: str, message: str) -> None:
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is not None and job.status not in TERMINAL:
            _mark_failed(job, code, message)


async def _record_retry(services: Services, job_id: uuid.UUID, exc: FetchFailed) -> None:
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is not None and job.status is JobStatus.running:
            job.transition(JobStatus.pending)
            job.stage = "retry_scheduled"
            job.error_code, job.error_message = exc.code, exc.message
    log.warning("download_retry_scheduled", code=exc.code, error=exc.message)


def sweep_stale_workdirs(tmp_dir: Path, timeout_s: float) -> None:
    """Remove folders left by a download whose worker was killed (its own cleanup never ran)."""
    cutoff = time.time() - (timeout_s + 3600)
    for path in tmp_dir.glob(f"{WORKDIR_PREFIX}*"):
        try:
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue
