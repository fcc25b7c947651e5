"""The reprocess job: the transcription job's work with the requested settings; its result
replaces the segments in one transaction and is recorded as a new version of kind `reprocess`.

Until that transaction commits, the current version is untouched (the row stays `completed`,
exports and search serve it); a failed or interrupted run leaves it current. The work is the
transcription job's (local engine or cloud provider), so a killed worker's stalled job is re-run
the same way, and writing the result twice is harmless (segments are replaced, one version per
completed job).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.engines.base import EngineResult, TranscribeOptions
from verbatim.jobs.lifecycle import JobContext, JobFailed
from verbatim.models import (
    AudioFile,
    Job,
    JobType,
    Mode,
    Segment,
    Transcription,
    User,
    VersionKind,
)
from verbatim.search.service import queue_index
from verbatim.speakers.service import write_speakers
from verbatim.transcriptions.runner import (
    Inputs,
    TranscriptionJob,
    dialogue_options,
    segment_rows,
    write_result,
)
from verbatim.usage.service import record_usage
from verbatim.versions.service import ensure_baseline, record_run, record_version, run_of

log = structlog.get_logger(__name__)


def _settings(job: Job) -> dict[str, Any]:
    run = (job.payload or {}).get("reprocess")
    if not isinstance(run, dict):
        raise JobFailed("invalid_job", "The reprocess job has no settings")
    return run


class ReprocessJob(TranscriptionJob):
    type = JobType.reprocess
    stage = "reprocessing"

    async def claim(self, session: AsyncSession, job: Job) -> Inputs:
        # No lock and no status change on the transcription: it stays readable meanwhile.
        transcription = await session.get(Transcription, job.transcription_id)
        audio = await session.get(AudioFile, job.audio_file_id) if job.audio_file_id else None
        if transcription is None or audio is None:
            raise JobFailed("audio_missing", "The audio file was deleted")
        run = _settings(job)
        options = run["options"]
        # dialogue_options reads a row: a stand-in carrying the requested mode and options.
        probe = Transcription(mode=Mode(run["mode"]), options=options)
        temperature = options.get("temperature")
        return Inputs(
            transcription_id=transcription.id,
            storage_key=audio.storage_key,
            model_name=run["model"],
            engine=run["engine"],
            # A cloud run resumes the provider's job an earlier attempt submitted.
            provider_job_id=job.detail.get("provider_job_id"),
            options=TranscribeOptions(
                language=run["requested_language"],
                word_timestamps=bool(options.get("word_timestamps", True)),
                vad_filter=bool(options.get("vad_filter", False)),
                beam_size=int(options.get("beam_size", 5)),
                dialogue=dialogue_options(probe),
                task=str(options.get("task", "transcribe")),
                initial_prompt=options.get("initial_prompt"),
                temperature=float(temperature) if temperature is not None else None,
                # No partial segments: they would show over the current version meanwhile.
                stream_segments=False,
            ),
        )

    async def complete(
        self,
        ctx: JobContext,
        session: AsyncSession,
        job: Job,
        inputs: Inputs,
        result: EngineResult,
    ) -> None:
        transcription = await session.get(
            Transcription, inputs.transcription_id, with_for_update=True
        )
        if transcription is None:
            raise JobFailed("transcription_missing", "The transcription was deleted")
        run = _settings(job)
        # The state being replaced is kept: version 1 (as transcribed) if nothing changed yet.
        await ensure_baseline(session, transcription)
        transcription.engine = run["engine"]
        transcription.model_name = run["model"]
        transcription.model_version = run["model_version"]
        transcription.mode = Mode(run["mode"])
        transcription.requested_language = run["requested_language"]
        transcription.options = run["options"]
        write_result(session, transcription, result)
        transcription.raw_response = result.raw
        # Now one engine's transcript: a reconciliation's metrics and votes no longer describe it
        # (version 1's snapshot keeps its words with their agreement).
        transcription.metrics = None
        transcription.reconciliation = None
        if result.provider_job_id is not None:
            transcription.provider_job_id = result.provider_job_id
        record_usage(ctx.services.settings, session, transcription, job, result)
        await session.execute(
            delete(Segment)
            .where(Segment.transcription_id == transcription.id)
            .execution_options(synchronize_session=False)
        )
        session.add_all(segment_rows(transcription.id, result))
        await write_speakers(session, ctx.services.settings, transcription, result)
        author = await session.get(User, job.user_id)
        summary = f"reprocessed: {run['engine']} {run['model']}"
        version = await record_version(
            session, transcription, VersionKind.reprocess, author, summary
        )
        await record_run(session, transcription.id, version, run_of(transcription))
        # Search follows the current version only: the index job replaces the chunks.
        await queue_index(session, transcription)
        log.info(
            "transcription_reprocessed",
            transcription_id=str(transcription.id),
            version=version,
            segments=len(result.segments),
        )

    async def fail(self, session: AsyncSession, job: Job, code: str, message: str) -> None:
        """The job fails; the transcription and its current version stay as they were."""
