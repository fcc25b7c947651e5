"""Multi-engine transcriptions (issue 11, decision 0024): the request, the children's ends, cancel.

A request with `engines` makes a parent transcription (engine `reconcile`) and one child
transcription per engine, each run by the ordinary transcription job (so a cloud child goes to
its own queue and runs in parallel with the local ones). The parent's `transcription_reconcile`
job is created with the request, waiting (`waiting_for_engines`, no queue job yet): the user
follows and cancels that one job. When the last child ends, the transaction that ends it queues
the reconcile job, under a lock on the parent row so two children ending at once queue it once.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audio.delivery import MediaExpired
from verbatim.audio.service import get_audio
from verbatim.config import Settings
from verbatim.engines.registry import get_spec
from verbatim.errors import Conflict, ValidationFailed
from verbatim.jobs.service import defer
from verbatim.models import (
    Job,
    JobStatus,
    JobType,
    Mode,
    Transcription,
    TranscriptionStatus,
    UsageEvent,
    User,
)
from verbatim.models.job import TERMINAL
from verbatim.models.transcription import RECONCILE_ENGINE
from verbatim.quotas import service as quotas
from verbatim.tenancy.scope import tenant_of
from verbatim.transcriptions.schemas import TranscriptionCreate
from verbatim.transcriptions.service import (
    check_request,
    get_transcription,
    transcription_options,
)

PARENT_ENGINE = RECONCILE_ENGINE
MIN_ENGINES, MAX_ENGINES = 2, 5
WAITING_STAGE = "waiting_for_engines"
OPEN = (TranscriptionStatus.pending, TranscriptionStatus.running)


def _split(entry: str) -> tuple[str, str | None]:
    engine, _, model = entry.strip().partition(":")
    return engine.strip(), (model.strip() or None)


def check_engines_shape(body: TranscriptionCreate) -> list[tuple[str, str | None]]:
    """422 for a list this server never accepts, before any engine is looked at."""
    entries = body.engines or []
    clash = sorted({"engine", "model"} & body.model_fields_set)
    if clash:
        raise ValidationFailed(
            "Send `engines` or `engine`/`model`, not both",
            code="engines_exclusive",
            details={"fields": clash},
        )
    if not MIN_ENGINES <= len(entries) <= MAX_ENGINES:
        raise ValidationFailed(
            f"`engines` takes {MIN_ENGINES} to {MAX_ENGINES} entries, got {len(entries)}",
            code="engines_count_invalid",
            details={"min": MIN_ENGINES, "max": MAX_ENGINES, "given": len(entries)},
        )
    return [_split(entry) for entry in entries]


async def request_multi(
    session: AsyncSession,
    settings: Settings,
    user: User,
    audio_id: uuid.UUID,
    body: TranscriptionCreate,
) -> tuple[Transcription, Job]:
    """The parent, its waiting reconcile job and one child (row, job, queue job) per engine, all
    in the request's transaction; every check runs first, so a 4xx stores nothing."""
    parsed = check_engines_shape(body)
    audio = await get_audio(session, user, audio_id)
    if audio.media_deleted_at is not None:
        raise MediaExpired()
    children: list[tuple[TranscriptionCreate, str, str, str | None]] = []
    seen: dict[tuple[str, str], str] = {}
    for engine, model in parsed:
        child_body = body.model_copy(update={"engine": engine, "model": model, "engines": None})
        ref = await check_request(settings, child_body)
        label = f"{engine}:{ref.name}"
        if (engine, ref.name) in seen:
            raise ValidationFailed(
                f"{label} is listed twice",
                code="engines_duplicate",
                details={"engine": label},
            )
        seen[(engine, ref.name)] = label
        children.append((child_body, label, ref.name, ref.version))
    if body.mode is Mode.dialogue and body.diarization == "channels" and audio.channels == 1:
        raise ValidationFailed(
            "diarization 'channels' needs a file with two or more channels; this one is mono",
            code="channels_need_stereo",
            details={"channels": audio.channels},
        )
    tenant = tenant_of(user)
    for child_body, _, _, _ in children:
        await quotas.check_job(
            session,
            settings,
            tenant,
            audio_seconds=audio.duration or 0.0,
            engine=child_body.engine,
        )
    labels = [label for _, label, _, _ in children]
    parent = Transcription(
        user_id=user.id,
        tenant_id=tenant,
        audio_file_id=audio.id,
        requested_language=body.language,
        mode=body.mode,
        engine=PARENT_ENGINE,
        model_name="+".join(labels)[:200],
        options={**transcription_options(body), "engines": labels},
        duration=audio.duration,
    )
    session.add(parent)
    await session.flush()
    parent_job = Job(
        user_id=user.id,
        tenant_id=tenant,
        type=JobType.transcription_reconcile,
        audio_file_id=audio.id,
        transcription_id=parent.id,
        stage=WAITING_STAGE,
    )
    session.add(parent_job)
    from verbatim.transcriptions.tasks import run_cloud_transcription, run_transcription

    detail: list[dict[str, Any]] = []
    for child_body, label, model_name, version in children:
        child = Transcription(
            user_id=user.id,
            tenant_id=tenant,
            audio_file_id=audio.id,
            parent_id=parent.id,
            requested_language=body.language,
            mode=body.mode,
            engine=child_body.engine,
            model_name=model_name,
            model_version=version,
            options=transcription_options(child_body),
            duration=audio.duration,
        )
        session.add(child)
        await session.flush()
        job = Job(
            user_id=user.id,
            tenant_id=tenant,
            type=JobType.transcription,
            audio_file_id=audio.id,
            transcription_id=child.id,
            stage="queued",
        )
        session.add(job)
        await session.flush()
        spec = get_spec(child_body.engine)
        cloud = spec is not None and spec.kind == "cloud"
        await defer(session, job, run_cloud_transcription if cloud else run_transcription)
        detail.append({"engine": label, "transcription_id": str(child.id), "job_id": str(job.id)})
    parent_job.update_detail(engines=detail)
    await session.flush()
    return parent, parent_job


async def _parent_job(session: AsyncSession, parent_id: uuid.UUID) -> Job | None:
    job: Job | None = await session.scalar(
        select(Job)
        .where(Job.transcription_id == parent_id, Job.type == JobType.transcription_reconcile)
        .order_by(Job.created_at.desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return job


async def child_ended(session: AsyncSession, child: Transcription) -> None:
    """Called in the transaction that completes, fails or cancels a child: the last one to end
    queues the reconcile job. The parent row lock serialises children ending at once, so the
    last of them sees every other one ended (committed) and exactly one queues the job."""
    if child.parent_id is None:
        return
    parent = await session.get(
        Transcription, child.parent_id, with_for_update=True, populate_existing=True
    )
    if parent is None:
        return
    job = await _parent_job(session, parent.id)
    if job is None or job.status is not JobStatus.pending or job.queue_job_id is not None:
        return  # cancelled, or already queued
    await session.flush()  # this child's new status
    rows = (
        await session.execute(
            select(Transcription.status, func.count())
            .where(Transcription.parent_id == parent.id)
            .group_by(Transcription.status)
        )
    ).all()
    counts = {status.value: int(n) for status, n in rows}
    job.update_detail(engine_statuses=counts)
    if any(counts.get(s.value) for s in OPEN):
        total = sum(counts.values())
        job.progress = round(90.0 * (total - sum(counts.get(s.value, 0) for s in OPEN)) / total, 1)
        return
    from verbatim.reconciliation.tasks import run_reconcile

    job.stage = "queued"
    await defer(session, job, run_reconcile)


async def cancel_children(session: AsyncSession, parent_id: uuid.UUID) -> None:
    """Cancel every unfinished child job (a cloud child's worker then cancels at the provider:
    transcriptions/cloud_runner.py). The caller has marked the parent's job cancelled first."""
    from verbatim.jobs.service import mark_cancelled

    child_ids = select(Transcription.id).where(Transcription.parent_id == parent_id)
    jobs = await session.scalars(
        select(Job)
        .where(Job.transcription_id.in_(child_ids), Job.status.not_in(TERMINAL))
        .order_by(Job.id)
        .with_for_update()
    )
    for job in list(jobs):
        await mark_cancelled(session, job)


async def get_metrics(
    session: AsyncSession, user: User, transcription_id: uuid.UUID
) -> dict[str, Any]:
    """A multi-engine transcription's stored metrics; a single engine's basic figures (its
    words, confidence, time and cost, no agreement) otherwise. 409 until completed."""
    transcription = await get_transcription(session, user, transcription_id)
    if transcription.status is not TranscriptionStatus.completed:
        raise Conflict(
            f"The transcription is {transcription.status.value}; metrics come with completion",
            code="transcription_not_ready",
        )
    await session.refresh(transcription, ["metrics"])
    if transcription.metrics is not None:
        return {"transcription_id": str(transcription.id), **transcription.metrics}
    cost = await session.scalar(
        select(func.sum(UsageEvent.cost_estimate)).where(
            UsageEvent.transcription_id == transcription.id
        )
    )
    engine = {
        "engine": f"{transcription.engine}:{transcription.model_name}",
        "transcription_id": str(transcription.id),
        "words": transcription.word_count or 0,
        "wer_vs_consensus": None,
        "mean_confidence": transcription.avg_confidence,
        "processing_time_s": transcription.processing_time_s,
        "cost": round(float(cost), 6) if cost is not None else None,
    }
    return {
        "transcription_id": str(transcription.id),
        "engines": [engine],
        "word_count": transcription.word_count or 0,
        "duration": transcription.duration,
        "mean_agreement": None,
        "unanimous_words": None,
        "mean_confidence": transcription.avg_confidence,
        "low_agreement_spans": [],
        "low_agreement_seconds": 0.0,
        "engines_requested": 1,
        "failed_engines": [],
        "speakers_from": None,
    }
