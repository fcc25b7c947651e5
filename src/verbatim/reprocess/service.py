"""Queueing a re-run of a completed transcription (decision 0025).

The request names only what changes; everything else is taken from the current run, then the
whole is checked exactly as a new transcription request is (`check_request`). The transcription
row stays `completed` (its current version readable and exportable) while the job runs; at most
one run of it is in flight.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audio.delivery import MediaExpired
from verbatim.config import Settings
from verbatim.engines.registry import get_spec
from verbatim.errors import Conflict, ValidationFailed
from verbatim.jobs.service import defer
from verbatim.models import (
    AudioFile,
    Job,
    JobType,
    Mode,
    Transcription,
    TranscriptionStatus,
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
from verbatim.versions.service import current_version

_DIALOGUE_FIELDS = ("diarization", "num_speakers", "min_speakers", "max_speakers")
# Options a request sets; others on the row (an OpenAI-API request's task, prompt, temperature,
# source) are kept, so a translation is re-run as a translation.
_REQUEST_OPTIONS = ("word_timestamps", "vad_filter", "beam_size", *_DIALOGUE_FIELDS)


def current_request(transcription: Transcription) -> dict[str, Any]:
    """The current run as the fields of a TranscriptionCreate."""
    options = transcription.options
    request: dict[str, Any] = {
        "language": transcription.requested_language,
        "model": transcription.model_name,
        "mode": transcription.mode,
        "engine": transcription.engine,
        "word_timestamps": bool(options.get("word_timestamps", True)),
        "vad_filter": bool(options.get("vad_filter", False)),
        "beam_size": int(options.get("beam_size", 5)),
    }
    if transcription.mode is Mode.dialogue:
        request.update({name: options[name] for name in _DIALOGUE_FIELDS if name in options})
    return request


def merged_request(transcription: Transcription, body: TranscriptionCreate) -> TranscriptionCreate:
    """What the re-run asks for: the body's fields over the current run's."""
    given = body.model_dump(include=body.model_fields_set)
    # A re-run is one engine's run (decision 0025); a multi-engine run is a new transcription.
    if given.get("engines") is not None:
        raise ValidationFailed(
            "Reprocessing runs one engine; start a new transcription with `engines` to "
            "reconcile several",
            code="reprocess_engines_unsupported",
        )
    given.pop("engines", None)
    if transcription.engine == RECONCILE_ENGINE and "engine" not in given:
        raise ValidationFailed(
            "This transcript was reconciled from several engines; name the `engine` to re-run it",
            code="engine_required",
        )
    merged = current_request(transcription)
    if "engine" in given and "model" not in given:
        merged.pop("model")  # another engine starts from its own default model
    if "mode" in given:
        for name in _DIALOGUE_FIELDS:  # another mode starts from its own defaults
            merged.pop(name, None)
    merged.update(given)
    try:
        return TranscriptionCreate.model_validate(merged, strict=False)
    except ValidationError as exc:  # a combination only the merge produced
        raise ValidationFailed(
            "The request and the current settings do not combine",
            code="validation_error",
            details={"errors": exc.errors(include_url=False, include_context=False)},
        ) from exc


async def request_reprocess(
    session: AsyncSession,
    settings: Settings,
    user: User,
    transcription_id: uuid.UUID,
    body: TranscriptionCreate,
) -> tuple[Transcription, Job, int]:
    transcription = await get_transcription(session, user, transcription_id)
    request = merged_request(transcription, body)
    # Checked before anything else is looked at or stored: 422 engine_unavailable, ...
    model = await check_request(settings, request)
    # One run of a transcript at a time: concurrent requests queue behind this lock.
    await session.execute(
        select(Transcription.id).where(Transcription.id == transcription.id).with_for_update()
    )
    await session.refresh(transcription, ["status"])
    if transcription.status is not TranscriptionStatus.completed:
        raise Conflict(
            f"The transcription is {transcription.status.value}, not completed",
            code="transcription_not_ready",
        )
    running = await session.scalar(
        select(Job.id)
        .where(
            Job.transcription_id == transcription.id,
            Job.type.in_((JobType.transcription, JobType.reprocess)),
            Job.status.not_in(TERMINAL),
        )
        .limit(1)
    )
    if running is not None:
        raise Conflict(
            "This transcription is being reprocessed; wait for its job to finish",
            code="reprocess_in_progress",
            details={"job_id": str(running)},
        )
    audio = await session.get(AudioFile, transcription.audio_file_id)
    if audio is None or audio.media_deleted_at is not None:
        raise MediaExpired()
    if request.mode is Mode.dialogue and request.diarization == "channels" and audio.channels == 1:
        raise ValidationFailed(
            "diarization 'channels' needs a file with two or more channels; this one is mono",
            code="channels_need_stereo",
            details={"channels": audio.channels},
        )
    await quotas.check_job(
        session,
        settings,
        tenant_of(user),
        audio_seconds=audio.duration or 0.0,
        engine=request.engine,
    )
    run = {
        "engine": request.engine,
        "model": model.name,
        "model_version": model.version,
        "mode": request.mode.value,
        "requested_language": request.language,
        "options": {
            **{
                k: v
                for k, v in transcription.options.items()
                if k not in _REQUEST_OPTIONS and k != "engines"  # a reconciled run's list
            },
            **transcription_options(request),
        },
    }
    job = Job(
        user_id=user.id,
        tenant_id=transcription.tenant_id,
        type=JobType.reprocess,
        audio_file_id=audio.id,
        transcription_id=transcription.id,
        stage="queued",
        payload={"reprocess": run},
    )
    session.add(job)
    await session.flush()
    from verbatim.reprocess.tasks import run_cloud_reprocess, run_reprocess

    spec = get_spec(request.engine)
    cloud = spec is not None and spec.kind == "cloud"
    await defer(session, job, run_cloud_reprocess if cloud else run_reprocess)
    version = await current_version(session, transcription.id) or 1
    return transcription, job, version
