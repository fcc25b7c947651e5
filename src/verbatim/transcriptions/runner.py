"""The transcription job: run the engine on the stored audio, write segments and words.

Safe to run twice (a stalled job is re-run after its worker died): results are written in one
transaction at the end, replacing whatever an earlier attempt left. Claiming, progress,
cancellation, retries and failures are the job lifecycle's (jobs/lifecycle.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.engines.base import DialogueOptions, EngineError, EngineResult, TranscribeOptions
from verbatim.engines.models import resolve_model_async
from verbatim.engines.registry import LOCAL_ENGINE
from verbatim.jobs.lifecycle import JobContext, JobFailed, JobKind, TransientJobError
from verbatim.metrics import instruments as metrics
from verbatim.models import (
    AudioFile,
    Job,
    JobType,
    Mode,
    Segment,
    Transcription,
    TranscriptionStatus,
)
from verbatim.models.base import utcnow
from verbatim.reconciliation.service import child_ended
from verbatim.search.service import queue_index
from verbatim.speakers.service import write_speakers
from verbatim.storage import ObjectNotFound, StorageUnavailable, local_copy
from verbatim.transcriptions.cloud_runner import run_cloud
from verbatim.transcriptions.outputs import write_outputs
from verbatim.transcriptions.partial import PartialPublisher, clear_partial
from verbatim.usage.service import record_usage

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Inputs:
    """What a claimed job needs, read while the job row was locked."""

    transcription_id: uuid.UUID
    storage_key: str
    model_name: str
    options: TranscribeOptions
    engine: str = LOCAL_ENGINE
    # Set when an earlier attempt submitted to a cloud provider: resume, do not resubmit.
    provider_job_id: str | None = None


class TranscriptionJob(JobKind[Inputs, EngineResult]):
    type = JobType.transcription
    stage = "transcribing"

    async def claim(self, session: AsyncSession, job: Job) -> Inputs:
        transcription = await session.get(Transcription, job.transcription_id, with_for_update=True)
        audio = await session.get(AudioFile, job.audio_file_id) if job.audio_file_id else None
        if transcription is None or audio is None:
            raise JobFailed("audio_missing", "The audio file was deleted")
        transcription.status = TranscriptionStatus.running
        options = transcription.options
        temperature = options.get("temperature")
        return Inputs(
            transcription_id=transcription.id,
            storage_key=audio.storage_key,
            model_name=transcription.model_name,
            engine=transcription.engine,
            provider_job_id=transcription.provider_job_id,
            options=TranscribeOptions(
                language=transcription.requested_language,
                word_timestamps=bool(options.get("word_timestamps", True)),
                vad_filter=bool(options.get("vad_filter", False)),
                beam_size=int(options.get("beam_size", 5)),
                dialogue=dialogue_options(transcription),
                task=str(options.get("task", "transcribe")),
                initial_prompt=options.get("initial_prompt"),
                temperature=float(temperature) if temperature is not None else None,
                stream_segments=bool(options.get("stream_segments", False)),
            ),
        )

    async def work(self, ctx: JobContext, inputs: Inputs) -> EngineResult:
        if inputs.engine != LOCAL_ENGINE:
            return await run_cloud(ctx, inputs)
        services = ctx.services
        assert services.engine_pool is not None, "this process runs no engine"

        async def on_progress(done: float, total: float, stage: str) -> None:
            percent = 100.0 * done / total if total > 0 else 0.0
            # A change of stage (transcribing -> diarizing) is stored at once.
            await ctx.progress(percent, force=stage != ctx_stage[0], stage=stage)
            ctx_stage[0] = stage

        ctx_stage = ["transcribing"]
        publisher = PartialPublisher(services, inputs.transcription_id)
        on_segment = publisher.add if inputs.options.stream_segments else None

        try:
            model = await resolve_model_async(inputs.model_name, services.settings.models_dir)
            # With S3 this downloads to a temporary file (in a thread), removed afterwards.
            async with (
                local_copy(services.storage, inputs.storage_key) as path,
                services.engine_pool.acquire() as engine,
            ):
                return await engine.transcribe(
                    model, str(path), inputs.options, on_progress, on_segment
                )
        except ObjectNotFound as exc:
            raise JobFailed("media_missing", "The stored media is missing") from exc
        except StorageUnavailable as exc:
            raise TransientJobError("storage_unavailable", exc.message) from exc
        except EngineError as exc:
            if exc.transient:
                raise TransientJobError(exc.code, exc.message) from exc
            raise JobFailed(exc.code, exc.message) from exc
        except ConnectionError as exc:  # the pipe to a dying engine process
            raise TransientJobError("engine_crashed", str(exc) or "engine connection lost") from exc

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
        write_result(session, transcription, result)
        if result.raw is not None:
            transcription.raw_response = result.raw
        if result.provider_job_id is not None:
            transcription.provider_job_id = result.provider_job_id
        # Usage is recorded in the transaction that completes the transcription: a run is
        # counted once, and only when its result is stored.
        record_usage(ctx.services.settings, session, transcription, job, result)
        # An earlier, interrupted attempt may have left nothing or everything: replace it.
        await session.execute(
            delete(Segment)
            .where(Segment.transcription_id == transcription.id)
            .execution_options(synchronize_session=False)
        )
        await clear_partial(session, transcription.id)
        session.add_all(segment_rows(transcription.id, result))
        await write_speakers(session, ctx.services.settings, transcription, result)
        await session.flush()
        # Search chunks are built by their own job, queued in this transaction: a completed
        # transcription always has its index job (search/service.py). An OpenAI-API request
        # that keeps nothing deletes its transcription once answered: no index for it.
        # One engine's run of a multi-engine transcription is not searched: its parent is.
        if not transcription.options.get("ephemeral") and transcription.parent_id is None:
            await queue_index(session, transcription)
        await child_ended(session, transcription)
        metrics.record_transcription(
            transcription.model_name, result.duration, result.processing_time_s
        )
        log.info(
            "transcription_completed",
            transcription_id=str(transcription.id),
            segments=len(result.segments),
            seconds=round(result.processing_time_s, 2),
        )

    async def after_commit(self, ctx: JobContext, inputs: Inputs) -> None:
        # The stored files follow the committed result (transcriptions/outputs.py).
        services = ctx.services
        await write_outputs(services.sessionmaker, services.storage, inputs.transcription_id)

    async def fail(self, session: AsyncSession, job: Job, code: str, message: str) -> None:
        if job.transcription_id is None:
            return
        await clear_partial(session, job.transcription_id)
        transcription = await session.get(Transcription, job.transcription_id)
        if transcription is not None:
            transcription.status = TranscriptionStatus.failed
            transcription.error_code, transcription.error_message = code, message
            await child_ended(session, transcription)


def dialogue_options(transcription: Transcription) -> DialogueOptions | None:
    """What the speaker pipeline is asked to do; None in mono mode or with diarization off."""
    options = transcription.options
    if transcription.mode is not Mode.dialogue or options.get("diarization") == "off":
        return None

    def count(name: str) -> int | None:
        value = options.get(name)
        return int(value) if value is not None else None

    return DialogueOptions(
        method="channels" if options.get("diarization") == "channels" else "auto",
        num_speakers=count("num_speakers"),
        min_speakers=count("min_speakers"),
        max_speakers=count("max_speakers"),
    )


def segment_rows(transcription_id: uuid.UUID, result: EngineResult) -> list[Segment]:
    rows = []
    for index, seg in enumerate(result.segments):
        words = [
            {"start": w.start, "end": w.end, "word": w.word, "probability": w.probability}
            for w in seg.words
        ]
        confidence = sum(w.probability for w in seg.words) / len(seg.words) if seg.words else None
        rows.append(
            Segment(
                transcription_id=transcription_id,
                index=index,
                start=seg.start,
                end=seg.end,
                text=seg.text,
                speaker=seg.speaker,
                confidence=round(confidence, 4) if confidence is not None else None,
                avg_logprob=seg.avg_logprob,
                no_speech_prob=seg.no_speech_prob,
                words=words,
            )
        )
    return rows


def write_result(session: AsyncSession, transcription: Transcription, result: EngineResult) -> None:
    probabilities = [w.probability for s in result.segments for w in s.words]
    text = " ".join(s.text for s in result.segments).strip()
    transcription.text = text
    transcription.language = result.language
    transcription.language_probability = round(result.language_probability, 4)
    transcription.duration = result.duration
    transcription.word_count = len(probabilities) or len(text.split())
    transcription.avg_confidence = (
        round(sum(probabilities) / len(probabilities), 4) if probabilities else None
    )
    transcription.processing_time_s = round(result.processing_time_s, 3)
    transcription.quality = {
        "real_time_factor": round(result.processing_time_s / result.duration, 4)
        if result.duration
        else None,
        "segments": len(result.segments),
        **({"speakers": len(result.speakers)} if result.diarization is not None else {}),
        **({"diarization": result.diarization} if result.diarization is not None else {}),
        "mean_avg_logprob": round(
            sum(s.avg_logprob for s in result.segments) / len(result.segments), 4
        )
        if result.segments
        else None,
    }
    transcription.status = TranscriptionStatus.completed
    transcription.completed_at = utcnow()
    transcription.error_code = transcription.error_message = None
