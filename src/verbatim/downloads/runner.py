"""The download job: fetch in a child process, then the upload's ingest path.

Safe to run twice (a stalled job is re-run after its worker died): the temporary folder of each
attempt is removed, and ingest deduplicates by checksum. What the job writes at the end (audio
file, job status, chained transcription) is one transaction. Claiming, progress, cancellation,
retries and failures are the job lifecycle's (jobs/lifecycle.py).
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audio.ingest import ReceivedFile
from verbatim.audio.service import ingest
from verbatim.audio.store import sha256_of, transcode_from
from verbatim.downloads.fetch import FetchedMedia, FetchFailed, FetchRequest, fetch
from verbatim.errors import AppError, MediaTooLong, UnsupportedMedia
from verbatim.jobs.lifecycle import JobContext, JobFailed, JobKind, TransientJobError
from verbatim.models import Job, JobType, SourceType, User
from verbatim.quotas.service import QuotaExceeded
from verbatim.tenancy.scope import act_in
from verbatim.transcriptions import service as transcriptions
from verbatim.transcriptions.schemas import TranscriptionCreate

log = structlog.get_logger(__name__)

WORKDIR_PREFIX = "download-"


@dataclass
class Inputs:
    url: str
    transcribe: dict[str, Any] | None
    workdir: Path | None = field(default=None)


@dataclass(frozen=True)
class Fetched:
    media: FetchedMedia
    received: ReceivedFile


class DownloadJob(JobKind[Inputs, Fetched]):
    type = JobType.download
    stage = "downloading"

    async def claim(self, session: AsyncSession, job: Job) -> Inputs:
        job.error_code = job.error_message = None
        return Inputs(url=str(job.payload["url"]), transcribe=job.payload.get("transcribe"))

    async def work(self, ctx: JobContext, inputs: Inputs) -> Fetched:
        settings = ctx.services.settings
        await asyncio.to_thread(sweep_stale_workdirs, settings.tmp_dir, settings.download_timeout_s)
        inputs.workdir = settings.tmp_dir / f"{WORKDIR_PREFIX}{uuid.uuid4().hex}"
        await asyncio.to_thread(inputs.workdir.mkdir, 0o700, True)
        request = FetchRequest(
            url=inputs.url,
            workdir=str(inputs.workdir),
            max_bytes=settings.download_max_bytes,
            max_duration_s=settings.download_max_duration_s,
            wall_time_s=settings.download_timeout_s,
            allow_networks=tuple(str(n) for n in settings.download_allow_networks),
        )

        async def on_progress(downloaded: int, total: int | None) -> None:
            # A cancelled job raises JobCancelled here; fetch() kills the download process.
            await ctx.progress(
                100.0 * downloaded / total if total else None,
                downloaded_bytes=downloaded,
                total_bytes=total,
            )

        try:
            media = await fetch(request, on_progress)
        except FetchFailed as exc:
            if exc.transient:
                raise TransientJobError(exc.code, exc.message) from exc
            raise JobFailed(exc.code, exc.message) from exc
        return Fetched(media=media, received=await asyncio.to_thread(_received_file, media))

    async def complete(
        self, ctx: JobContext, session: AsyncSession, job: Job, inputs: Inputs, result: Fetched
    ) -> None:
        settings = ctx.services.settings
        user = await session.get(User, job.user_id)
        if user is None:
            raise JobFailed("user_missing", "The account was deleted")
        act_in(user, job.tenant_id)  # the library the download was queued for
        media, received = result.media, result.received
        try:
            audio, duplicate = await ingest(
                session,
                ctx.services.storage,
                user,
                received,
                source_type=SourceType.download,
                source_url=inputs.url,
                platform=media.platform,
                title=media.title,
                max_duration_s=settings.download_max_duration_s,
                transcode=transcode_from(settings),
                settings=settings,
            )
        except QuotaExceeded as exc:
            raise JobFailed("quota_exceeded", exc.message) from exc
        except UnsupportedMedia as exc:
            raise JobFailed(
                "no_audio_stream", "The downloaded file has no decodable audio"
            ) from exc
        except MediaTooLong as exc:
            raise JobFailed("media_too_long", exc.message) from exc
        detail: dict[str, Any] = {
            "is_duplicate": duplicate,
            "title": media.title,
            "platform": media.platform,
            # Progress messages are throttled: record the final count.
            "downloaded_bytes": received.size,
            "total_bytes": received.size,
        }
        if inputs.transcribe is not None:
            try:
                # A savepoint: a refused transcription must not undo the download.
                async with session.begin_nested():
                    transcription, follow_up = await transcriptions.request_transcription(
                        session,
                        settings,
                        user,
                        audio.id,
                        TranscriptionCreate.model_validate(inputs.transcribe),
                    )
                job.transcription_id = transcription.id
                detail["transcription_job_id"] = str(follow_up.id)
            except AppError as exc:
                detail["transcription_error"] = {"code": exc.code, "message": exc.message}
        job.audio_file_id = audio.id
        job.update_detail(**detail)
        log.info("download_completed", audio_file_id=str(audio.id), duplicate=duplicate)

    async def release(self, inputs: Inputs) -> None:
        # The media file has been moved into storage, or is removed here with its folder.
        if inputs.workdir is not None:
            await asyncio.to_thread(shutil.rmtree, inputs.workdir, True)


def _received_file(media: FetchedMedia) -> ReceivedFile:
    """Hash the downloaded file (in a thread: it can be gigabytes)."""
    path = Path(media.path)
    digest, size = sha256_of(path)
    stem = media.title or "download"
    return ReceivedFile(path=path, size=size, sha256=digest, filename=f"{stem}.{media.ext}")


def sweep_stale_workdirs(tmp_dir: Path, timeout_s: float) -> None:
    """Remove folders left by a download whose worker was killed (its own cleanup never ran)."""
    cutoff = time.time() - (timeout_s + 3600)
    for path in tmp_dir.glob(f"{WORKDIR_PREFIX}*"):
        try:
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue
