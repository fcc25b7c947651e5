"""What the library page lists: one page of the caller's recordings with their latest
transcription, speakers and topics, paged on the server (a page is a few dozen rows, whatever
the size of the library)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.models import (
    AssignmentStatus,
    AudioFile,
    Job,
    JobStatus,
    JobType,
    Speaker,
    Topic,
    Transcription,
    TranscriptionTopic,
    User,
)
from verbatim.tenancy.scope import visible

PAGE_SIZE = 50
STATUSES = ("none", "pending", "running", "completed", "failed", "cancelled")
Sort = Literal["newest", "oldest", "title", "longest", "shortest"]
SORTS: dict[str, Any] = {
    "newest": (AudioFile.created_at.desc(), AudioFile.id.desc()),
    "oldest": (AudioFile.created_at.asc(), AudioFile.id.asc()),
    "title": (func.lower(AudioFile.original_filename).asc(), AudioFile.id.asc()),
    "longest": (AudioFile.duration.desc().nulls_last(), AudioFile.id.asc()),
    "shortest": (AudioFile.duration.asc().nulls_last(), AudioFile.id.asc()),
}


@dataclass
class LibraryFilters:
    q: str = ""
    status: str = ""
    language: str = ""
    sort: str = "newest"
    page: int = 1


@dataclass
class Row:
    audio: AudioFile
    transcription: Transcription | None
    speakers: int = 0
    topics: list[str] = field(default_factory=list)
    job: Job | None = None


def _latest_transcription() -> Any:
    """Each recording's newest transcription (a lateral subquery per listed row)."""
    return (
        select(Transcription.id)
        # One engine's run of a multi-engine transcription is part of its parent.
        .where(Transcription.audio_file_id == AudioFile.id, Transcription.parent_id.is_(None))
        .order_by(Transcription.created_at.desc())
        .limit(1)
        .correlate(AudioFile)
        .scalar_subquery()
    )


def _filtered(user: User, filters: LibraryFilters) -> Select[AudioFile]:
    stmt = select(AudioFile).where(visible(AudioFile, user))
    if filters.q:
        like = "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(AudioFile.original_filename.ilike(like), AudioFile.title.ilike(like)))
    if filters.status or filters.language:
        latest = _latest_transcription()
        conditions = [Transcription.id == latest]
        if filters.status:
            conditions.append(Transcription.status == filters.status)
        if filters.language:
            conditions.append(Transcription.language == filters.language.lower())
        exists = select(Transcription.id).where(*conditions).exists()
        if filters.status == "none":
            stmt = stmt.where(
                ~select(Transcription.id)
                .where(Transcription.audio_file_id == AudioFile.id)
                .exists()
            )
        else:
            stmt = stmt.where(exists)
    return stmt


async def library_page(
    session: AsyncSession, user: User, filters: LibraryFilters
) -> tuple[list[Row], int]:
    stmt = _filtered(user, filters)
    total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    order = SORTS.get(filters.sort, SORTS["newest"])
    offset = (max(filters.page, 1) - 1) * PAGE_SIZE
    audios = list(await session.scalars(stmt.order_by(*order).limit(PAGE_SIZE).offset(offset)))
    if not audios:
        return [], total
    ids = [a.id for a in audios]
    latest = {
        t.audio_file_id: t
        for t in await session.scalars(
            select(Transcription)
            .where(
                Transcription.audio_file_id.in_(ids),
                visible(Transcription, user),
                Transcription.parent_id.is_(None),
            )
            .order_by(Transcription.audio_file_id, Transcription.created_at.desc())
            .ext(distinct_on(Transcription.audio_file_id))
        )
    }
    t_ids = [t.id for t in latest.values()]
    speakers: dict[uuid.UUID, int] = {}
    topics: dict[uuid.UUID, list[str]] = {}
    jobs: dict[uuid.UUID, Job] = {}
    if t_ids:
        speakers = {
            tid: int(n)
            for tid, n in await session.execute(
                select(Speaker.transcription_id, func.count())
                .where(Speaker.transcription_id.in_(t_ids))
                .group_by(Speaker.transcription_id)
            )
        }
        for tid, name in await session.execute(
            select(TranscriptionTopic.transcription_id, Topic.name)
            .join(Topic, Topic.id == TranscriptionTopic.topic_id)
            .where(
                TranscriptionTopic.transcription_id.in_(t_ids),
                TranscriptionTopic.status == AssignmentStatus.accepted,
                visible(Topic, user),
            )
            .order_by(Topic.name)
        ):
            topics.setdefault(tid, []).append(name)
        active = (JobStatus.pending, JobStatus.running)
        for job in await session.scalars(
            select(Job).where(
                Job.transcription_id.in_(t_ids),
                Job.status.in_(active),
                Job.type == JobType.transcription,
                visible(Job, user),
            )
        ):
            jobs[job.transcription_id] = job  # type: ignore[index]
    rows = []
    for audio in audios:
        t = latest.get(audio.id)
        rows.append(
            Row(
                audio=audio,
                transcription=t,
                speakers=speakers.get(t.id, 0) if t else 0,
                topics=topics.get(t.id, []) if t else [],
                job=jobs.get(t.id) if t else None,
            )
        )
    return rows, total


async def languages(session: AsyncSession, user: User) -> list[str]:
    rows = await session.scalars(
        select(Transcription.language)
        .where(visible(Transcription, user), Transcription.language.is_not(None))
        .distinct()
        .order_by(Transcription.language)
        .limit(50)
    )
    return [r for r in rows if r]
