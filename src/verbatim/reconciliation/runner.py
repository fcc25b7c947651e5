"""The `transcription_reconcile` job: vote the engines' results into the parent's transcript.

Queued by the last child to end (reconciliation/service.py). Claims the children that completed
(at least two, else the parent fails with `engines_insufficient`), aligns and votes in a thread
(decision 0023: seconds of pure Python for hours of audio must not stall the event loop), runs
the optional LLM pass, then writes the parent's segments, words, speakers, metrics and
reconciliation record, a `reconcile` version and its search index job in one transaction.
"""

from __future__ import annotations

import asyncio
import bisect
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.engines.registry import LOCAL_ENGINE
from verbatim.jobs.lifecycle import JobContext, JobFailed, JobKind
from verbatim.models import (
    Job,
    JobType,
    Mode,
    Segment,
    Speaker,
    Transcription,
    TranscriptionStatus,
    UsageEvent,
    VersionKind,
)
from verbatim.models.base import utcnow
from verbatim.reconciliation.align import Word
from verbatim.reconciliation.llm import LlmResult, config_from, resolve
from verbatim.reconciliation.metrics import quality
from verbatim.reconciliation.vote import Consensus, VotedWord, reconcile
from verbatim.search.service import queue_index
from verbatim.transcriptions.outputs import write_outputs
from verbatim.versions.service import record_version

log = structlog.get_logger(__name__)

# A consensus segment also ends at a pause this long (the layout engine's segments aside).
MAX_SEGMENT_WORDS = 60


@dataclass(frozen=True)
class Child:
    id: uuid.UUID
    label: str  # engine:model
    engine: str
    model: str
    diarized: bool  # a local run in dialogue mode that labelled speakers
    processing_time_s: float | None
    language: str | None
    language_probability: float | None


@dataclass(frozen=True)
class Inputs:
    parent_id: uuid.UUID
    children: tuple[Child, ...]  # the completed ones, in the request's order
    failed: tuple[dict[str, Any], ...]  # the others: engine, status, error code
    duration: float | None


@dataclass
class Outcome:
    segments: list[dict[str, Any]]
    metrics: dict[str, Any]
    record: dict[str, Any]
    speaker_source: uuid.UUID | None
    language: Child
    seconds: float
    llm: LlmResult | None = None
    words: list[VotedWord] = field(default_factory=list)


class ReconcileJob(JobKind[Inputs, Outcome]):
    type = JobType.transcription_reconcile
    stage = "reconciling"

    async def claim(self, session: AsyncSession, job: Job) -> Inputs:
        parent = await session.get(Transcription, job.transcription_id, with_for_update=True)
        if parent is None:
            raise JobFailed("transcription_missing", "The transcription was deleted")
        rows = list(
            await session.scalars(
                select(Transcription)
                .where(Transcription.parent_id == parent.id)
                .order_by(Transcription.created_at, Transcription.id)
            )
        )
        order = {label: i for i, label in enumerate(parent.options.get("engines", []))}
        rows.sort(key=lambda r: order.get(f"{r.engine}:{r.model_name}", len(order)))
        done = [r for r in rows if r.status is TranscriptionStatus.completed]
        failed = tuple(
            {
                "engine": f"{r.engine}:{r.model_name}",
                "transcription_id": str(r.id),
                "status": r.status.value,
                "error_code": r.error_code,
            }
            for r in rows
            if r.status is not TranscriptionStatus.completed
        )
        if len(done) < 2:
            raise JobFailed(
                "engines_insufficient",
                f"{len(done)} of {len(rows)} engines completed; reconciling needs at least two",
            )
        parent.status = TranscriptionStatus.running
        speakers = {
            tid
            for tid, n in (
                await session.execute(
                    select(Speaker.transcription_id, func.count())
                    .where(Speaker.transcription_id.in_([r.id for r in done]))
                    .group_by(Speaker.transcription_id)
                )
            ).all()
            if n
        }
        return Inputs(
            parent_id=parent.id,
            children=tuple(
                Child(
                    id=r.id,
                    label=f"{r.engine}:{r.model_name}",
                    engine=r.engine,
                    model=r.model_name,
                    diarized=r.engine == LOCAL_ENGINE
                    and r.mode is Mode.dialogue
                    and r.id in speakers,
                    processing_time_s=r.processing_time_s,
                    language=r.language,
                    language_probability=r.language_probability,
                )
                for r in done
            ),
            failed=failed,
            duration=parent.duration,
        )

    async def work(self, ctx: JobContext, inputs: Inputs) -> Outcome:
        started = time.monotonic()
        async with ctx.services.sessionmaker() as session:
            layouts = [await _segments_of(session, c.id) for c in inputs.children]
            costs = dict(
                (
                    await session.execute(
                        select(UsageEvent.transcription_id, func.sum(UsageEvent.cost_estimate))
                        .where(UsageEvent.transcription_id.in_([c.id for c in inputs.children]))
                        .group_by(UsageEvent.transcription_id)
                    )
                ).all()
            )
        await ctx.progress(10.0, force=True, stage="reconciling")
        hypotheses = [_words(segments) for segments in layouts]
        consensus = await asyncio.to_thread(reconcile, hypotheses)
        infos = [
            {
                "engine": c.label,
                "transcription_id": str(c.id),
                "processing_time_s": c.processing_time_s,
                "cost": round(float(costs[c.id]), 6) if costs.get(c.id) is not None else None,
                "mean_confidence": _mean([w.confidence for w in h if w.confidence is not None]),
            }
            for c, h in zip(inputs.children, hypotheses, strict=True)
        ]
        metrics = await asyncio.to_thread(quality, consensus, infos, duration=inputs.duration)
        metrics["engines_requested"] = len(inputs.children) + len(inputs.failed)
        metrics["failed_engines"] = list(inputs.failed)
        words = consensus.words
        llm: LlmResult | None = None
        config = config_from(ctx.services.settings)
        if config is not None:
            await ctx.progress(50.0, force=True, stage="llm_pass")
            llm = await resolve(config, consensus)
            words = llm.words
        # Layout and speakers: the most trusted engine's segments; speakers from a local
        # dialogue run (its own diarization), else the most trusted engine that labelled any.
        best = max(range(len(inputs.children)), key=lambda i: consensus.weights[i])
        source = next(
            (i for i, c in enumerate(inputs.children) if c.diarized),
            max(
                (i for i, h in enumerate(hypotheses) if any(w.speaker for w in h)),
                key=lambda i: consensus.weights[i],
                default=None,
            ),
        )
        labels = [c.label for c in inputs.children]
        segments = _layout(
            words, layouts[best], layouts[source] if source is not None else None, labels
        )
        metrics["speakers_from"] = labels[source] if source is not None else None
        record = _record(consensus, labels, llm)
        # What the LLM pass did, shown with the metrics (every change marked source "llm").
        metrics["llm"] = record["llm"]
        return Outcome(
            segments=segments,
            metrics=metrics,
            record=record,
            speaker_source=inputs.children[source].id if source is not None else None,
            language=inputs.children[best],
            seconds=time.monotonic() - started,
            llm=llm,
            words=words,
        )

    async def complete(
        self, ctx: JobContext, session: AsyncSession, job: Job, inputs: Inputs, result: Outcome
    ) -> None:
        parent = await session.get(Transcription, inputs.parent_id, with_for_update=True)
        if parent is None:
            raise JobFailed("transcription_missing", "The transcription was deleted")
        await session.execute(
            delete(Segment)
            .where(Segment.transcription_id == parent.id)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            delete(Speaker)
            .where(Speaker.transcription_id == parent.id)
            .execution_options(synchronize_session=False)
        )
        for index, seg in enumerate(result.segments):
            session.add(Segment(transcription_id=parent.id, index=index, **seg))
        if result.speaker_source is not None:
            await _copy_speakers(session, result.speaker_source, parent.id, result.segments)
        words = [w for s in result.segments for w in s["words"]]
        parent.text = " ".join(s["text"] for s in result.segments if s["text"]).strip()
        parent.word_count = len(words)
        parent.avg_confidence = _mean([w["probability"] for w in words if w["probability"]])
        parent.language = result.language.language
        parent.language_probability = result.language.language_probability
        parent.processing_time_s = round(
            max((c.processing_time_s or 0.0) for c in inputs.children) + result.seconds, 3
        )
        parent.quality = {
            "segments": len(result.segments),
            "engines": len(inputs.children),
            "mean_agreement": result.metrics.get("mean_agreement"),
            "reconcile_seconds": round(result.seconds, 3),
        }
        parent.metrics = result.metrics
        parent.reconciliation = result.record
        parent.status = TranscriptionStatus.completed
        parent.completed_at = utcnow()
        parent.error_code = parent.error_message = None
        engines = ", ".join(c.label for c in inputs.children)
        await record_version(
            session, parent, VersionKind.reconcile, None, f"reconciled from {engines}"
        )
        await queue_index(session, parent)
        log.info(
            "transcription_reconciled",
            transcription_id=str(parent.id),
            engines=len(inputs.children),
            words=len(words),
            seconds=round(result.seconds, 3),
        )

    async def after_commit(self, ctx: JobContext, inputs: Inputs) -> None:
        # raw_transcript.json and agent_optimized.json follow the committed consensus.
        services = ctx.services
        await write_outputs(services.sessionmaker, services.storage, inputs.parent_id)

    async def fail(self, session: AsyncSession, job: Job, code: str, message: str) -> None:
        if job.transcription_id is None:
            return
        parent = await session.get(Transcription, job.transcription_id)
        if parent is not None:
            parent.status = TranscriptionStatus.failed
            parent.error_code, parent.error_message = code, message


# --- reading the children -------------------------------------------------------------------


@dataclass(frozen=True)
class _Seg:
    start: float
    end: float
    text: str
    speaker: str | None
    words: list[dict[str, Any]]


async def _segments_of(session: AsyncSession, transcription_id: uuid.UUID) -> list[_Seg]:
    rows = await session.execute(
        select(Segment.start, Segment.end, Segment.text, Segment.speaker, Segment.words)
        .where(Segment.transcription_id == transcription_id)
        .order_by(Segment.index)
    )
    return [_Seg(*row) for row in rows]


def _words(segments: list[_Seg]) -> list[Word]:
    out: list[Word] = []
    for seg in segments:
        if seg.words:
            out += [
                Word(w["word"], w["start"], w["end"], w.get("probability"), seg.speaker)
                for w in seg.words
            ]
            continue
        # Without word timestamps: the segment's words, its time shared evenly.
        tokens = seg.text.split()
        step = (seg.end - seg.start) / max(1, len(tokens))
        out += [
            Word(" " + t, seg.start + i * step, seg.start + (i + 1) * step, None, seg.speaker)
            for i, t in enumerate(tokens)
        ]
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


# --- writing the parent -----------------------------------------------------------------------


def _index_at(segments: list[_Seg], starts: list[float], t: float) -> int:
    """The segment holding time t (the one starting last at or before it)."""
    return max(0, bisect.bisect_right(starts, t) - 1) if segments else 0


def _layout(
    words: list[VotedWord],
    layout: list[_Seg],
    speakers: list[_Seg] | None,
    labels: list[str],
) -> list[dict[str, Any]]:
    """Consensus words grouped into segments where the layout engine's segments break (or the
    speaker changes), each word with its votes."""
    layout_starts = [s.start for s in layout]
    speaker_starts = [s.start for s in speakers] if speakers else []
    groups: list[tuple[int, str | None, list[dict[str, Any]]]] = []
    for voted in words:
        w = voted.word
        middle = (w.start + w.end) / 2
        speaker = (
            speakers[_index_at(speakers, speaker_starts, middle)].speaker if speakers else None
        )
        key = _index_at(layout, layout_starts, middle)
        entry = {
            "start": round(w.start, 3),
            "end": round(w.end, 3),
            "word": w.text,
            "probability": w.confidence,
            "speaker": speaker,
            "agreement": voted.agreement,
            "engines": voted.engines,
            "alternatives": [
                {"word": a.text, "engines": [labels[e] for e in a.engines]}
                for a in voted.alternatives
                if a.text
            ],
        }
        if voted.slot < 0 or not voted.voters:
            entry["source"] = "llm"
        last = groups[-1] if groups else None
        if (
            last is not None
            and last[0] == key
            and last[1] == speaker
            and len(last[2]) < MAX_SEGMENT_WORDS
        ):
            last[2].append(entry)
        else:
            groups.append((key, speaker, [entry]))
    out = []
    for _, speaker, group in groups:
        probabilities = [w["probability"] for w in group if w["probability"] is not None]
        out.append(
            {
                "start": group[0]["start"],
                "end": max(w["end"] for w in group),
                "text": " ".join(w["word"].strip() for w in group),
                "speaker": speaker,
                "confidence": _mean(probabilities),
                "words": group,
            }
        )
    return out


async def _copy_speakers(
    session: AsyncSession,
    source: uuid.UUID,
    parent_id: uuid.UUID,
    segments: list[dict[str, Any]],
) -> None:
    """The source run's speakers (names and voice matches kept), talk time from the parent's
    own segments."""
    talk: dict[str, float] = {}
    counts: dict[str, int] = {}
    for seg in segments:
        if seg["speaker"]:
            talk[seg["speaker"]] = talk.get(seg["speaker"], 0.0) + seg["end"] - seg["start"]
            counts[seg["speaker"]] = counts.get(seg["speaker"], 0) + len(seg["words"])
    rows = await session.scalars(select(Speaker).where(Speaker.transcription_id == source))
    for s in rows:
        session.add(
            Speaker(
                transcription_id=parent_id,
                label=s.label,
                display_name=s.display_name,
                talk_time=round(talk.get(s.label, 0.0), 3),
                word_count=counts.get(s.label, 0),
                centroid=list(s.centroid) if s.centroid is not None else None,
                voice_profile_id=s.voice_profile_id,
                match_confidence=s.match_confidence,
            )
        )


def _record(consensus: Consensus, labels: list[str], llm: LlmResult | None) -> dict[str, Any]:
    """What the reconciliation decided, kept for the raw transcript file: the engines and their
    weights, every slot's words per engine and the winner, and the LLM pass's changes."""
    return {
        "engines": labels,
        "weights": [round(w, 4) for w in consensus.weights],
        "slots": [
            {
                "words": [w.text.strip() if w is not None else None for w in slot.words],
                "choice": choice,
            }
            for slot, choice in zip(consensus.slots, consensus.choices, strict=True)
        ],
        "llm": None
        if llm is None
        else {
            "model": llm.model,
            "changes": llm.changes,
            "notes": llm.notes,
            "summary": llm.summary,
            "topics": llm.topics,
        },
    }
