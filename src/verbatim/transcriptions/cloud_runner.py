"""The transcription job's work for cloud engines (engines/registry.py): the audio goes to the
provider from this worker's event loop, with the provider's job id stored as soon as it exists.

- A transient provider failure (429/5xx/network after the HTTP retries) becomes a job retry;
  the next attempt finds the stored provider job id and polls it instead of submitting again.
- A cancelled job (the owner's DELETE or cancel) stops at the next poll and asks the provider to
  cancel (delete) the job where its API allows.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select

from verbatim.db import session_scope
from verbatim.engines.base import EngineError, EngineResult
from verbatim.engines.cloud import CloudEngine, CloudRequest
from verbatim.engines.registry import cloud_engine
from verbatim.jobs.lifecycle import JobCancelled, JobContext, JobFailed, TransientJobError
from verbatim.models import Job, JobStatus, Transcription
from verbatim.storage import ObjectNotFound, StorageUnavailable, local_copy

if TYPE_CHECKING:
    from verbatim.transcriptions.runner import Inputs

log = structlog.get_logger(__name__)


class _Hooks:
    def __init__(self, ctx: JobContext, transcription_id: uuid.UUID, provider_job_id: str | None):
        self.ctx = ctx
        self.transcription_id = transcription_id
        self.provider_job_id = provider_job_id
        self.stage = ""

    async def submitted(self, provider_job_id: str) -> None:
        """Stored and committed before the first poll: a restart resumes from here."""
        self.provider_job_id = provider_job_id
        async with session_scope(self.ctx.services.sessionmaker) as session:
            transcription = await session.get(Transcription, self.transcription_id)
            if transcription is not None:
                transcription.provider_job_id = provider_job_id
            job = await session.get(Job, self.ctx.job_id)
            if job is not None:
                job.update_detail(provider_job_id=provider_job_id)
        log.info("engine_job_submitted", provider_job_id=provider_job_id)

    async def progress(self, percent: float, stage: str) -> None:
        changed = stage != self.stage
        self.stage = stage
        await self.ctx.progress(percent, force=changed, stage=stage)


async def _job_cancelled(ctx: JobContext) -> bool:
    async with ctx.services.sessionmaker() as session:
        status = await session.scalar(select(Job.status).where(Job.id == ctx.job_id))
    return status is JobStatus.cancelled


async def _cancel_at_provider(engine: CloudEngine, provider_job_id: str | None) -> None:
    if provider_job_id is None:
        return
    try:
        await engine.cancel(provider_job_id)
    except EngineError as exc:  # best effort: the job is cancelled here whatever it says
        log.warning("engine_cancel_failed", code=exc.code, error=exc.message)


async def run_cloud(ctx: JobContext, inputs: Inputs) -> EngineResult:
    services = ctx.services
    engine = cloud_engine(services.settings, inputs.engine)
    hooks = _Hooks(ctx, inputs.transcription_id, inputs.provider_job_id)
    request = CloudRequest(
        model=inputs.model_name, options=inputs.options, provider_job_id=inputs.provider_job_id
    )
    if inputs.provider_job_id is not None:
        log.info("engine_job_resumed", provider_job_id=inputs.provider_job_id)
    try:
        async with local_copy(services.storage, inputs.storage_key) as path:
            result = await engine.transcribe(Path(path), request, hooks)
        result.provider_job_id = hooks.provider_job_id
        return result
    except JobCancelled:
        await _cancel_at_provider(engine, hooks.provider_job_id)
        raise
    except asyncio.CancelledError:
        # The queue aborts the task when its owner cancels, and also when the worker shuts
        # down: only the first may delete the provider's job (a restart resumes it).
        if hooks.provider_job_id is not None and await _job_cancelled(ctx):
            await asyncio.shield(_cancel_at_provider(engine, hooks.provider_job_id))
        raise
    except ObjectNotFound as exc:
        raise JobFailed("media_missing", "The stored media is missing") from exc
    except StorageUnavailable as exc:
        raise TransientJobError("storage_unavailable", exc.message) from exc
    except EngineError as exc:
        if exc.transient:
            raise TransientJobError(exc.code, exc.message) from exc
        raise JobFailed(exc.code, exc.message) from exc
    finally:
        await engine.aclose()
