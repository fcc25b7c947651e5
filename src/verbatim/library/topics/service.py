"""Topics: CRUD, review of suggestions, listings; queueing the scoring job.

Ownership is checked in one place, `owned_topics(user)`; an assignment links a topic and a
transcription of the same user (both are looked up through their owner's filter).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audit import service as audit
from verbatim.errors import Conflict, NotFound
from verbatim.jobs.service import defer
from verbatim.kit.pagination import paginate
from verbatim.library.topics.schemas import AssignmentSet, TopicCreate, TopicUpdate, passages_of
from verbatim.models import (
    AssignedBy,
    AssignmentStatus,
    AudioFile,
    Job,
    JobType,
    Topic,
    Transcription,
    TranscriptionTopic,
    User,
)
from verbatim.models.base import utcnow
from verbatim.tenancy.scope import tenant_of, visible
from verbatim.transcriptions.service import get_transcription


def owned_topics(user: User) -> Select[Topic]:
    return select(Topic).where(visible(Topic, user))


async def get_topic(session: AsyncSession, user: User, topic_id: uuid.UUID) -> Topic:
    topic = await session.scalar(owned_topics(user).where(Topic.id == topic_id))
    if topic is None:
        raise NotFound("Topic not found", code="topic_not_found")
    return topic


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"You already have a topic named {name!r}",
        code="topic_name_taken",
        details={"name": name},
    )


async def _check_name_free(
    session: AsyncSession, user: User, name: str, *, other_than: uuid.UUID | None = None
) -> None:
    stmt = owned_topics(user).where(func.lower(Topic.name) == name.lower())
    if other_than is not None:
        stmt = stmt.where(Topic.id != other_than)
    if await session.scalar(stmt) is not None:
        raise _name_taken(name)


async def _flush_unique(session: AsyncSession, name: str) -> None:
    """Flush in a savepoint; a concurrent request that took the name first is a 409 too."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if "uq_topic_tenant_name" in str(exc.orig):
            raise _name_taken(name) from exc
        raise


async def create_topic(session: AsyncSession, user: User, body: TopicCreate) -> tuple[Topic, Job]:
    """The topic, and a scoring job over the user's transcriptions (same transaction)."""
    await _check_name_free(session, user, body.name)
    topic = Topic(
        user_id=user.id,
        tenant_id=tenant_of(user),
        name=body.name,
        description=body.description,
        version=1,
    )
    session.add(topic)
    await _flush_unique(session, body.name)
    job = await queue_scoring(session, user.id, tenant_of(user), topic_id=topic.id)
    await session.refresh(topic)
    return topic, job


async def update_topic(
    session: AsyncSession, user: User, topic_id: uuid.UUID, body: TopicUpdate
) -> tuple[Topic, Job | None]:
    topic = await get_topic(session, user, topic_id)
    changed = False
    if "name" in body.model_fields_set and body.name is not None and body.name != topic.name:
        await _check_name_free(session, user, body.name, other_than=topic.id)
        topic.name = body.name
        changed = True
    if "description" in body.model_fields_set and body.description != topic.description:
        topic.description = body.description
        changed = True
    job = None
    if changed:
        # Suggestions of the earlier text are replaced by the job (a job still running on the
        # earlier version does not write).
        topic.version += 1
        topic.updated_at = utcnow()
        await _flush_unique(session, topic.name)
        job = await queue_scoring(session, user.id, tenant_of(user), topic_id=topic.id)
    await session.refresh(topic)
    return topic, job


async def delete_topic(session: AsyncSession, user: User, topic_id: uuid.UUID) -> None:
    """The topic and its assignments; the transcriptions stay."""
    topic = await get_topic(session, user, topic_id)
    await session.delete(topic)
    await session.flush()
    await audit.record_for(session, user, audit.Action.delete, "topic", topic_id)


async def list_topics(
    session: AsyncSession, user: User, *, limit: int, offset: int
) -> tuple[list[Topic], int]:
    stmt = owned_topics(user).order_by(func.lower(Topic.name), Topic.id)
    return await paginate(session, stmt, limit, offset)


async def topic_counts(
    session: AsyncSession, topic_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    counts: dict[uuid.UUID, dict[str, int]] = {
        tid: {s.value: 0 for s in AssignmentStatus} for tid in topic_ids
    }
    if not topic_ids:
        return counts
    rows = await session.execute(
        select(TranscriptionTopic.topic_id, TranscriptionTopic.status, func.count())
        .where(TranscriptionTopic.topic_id.in_(topic_ids))
        .group_by(TranscriptionTopic.topic_id, TranscriptionTopic.status)
    )
    for topic_id, status, n in rows:
        counts[topic_id][AssignmentStatus(status).value] = int(n)
    return counts


async def describe(
    session: AsyncSession, topics: list[Topic], job: Job | None = None
) -> list[dict[str, Any]]:
    counts = await topic_counts(session, [t.id for t in topics])
    return [
        {
            "id": t.id,
            "name": t.name,
            "description": t.description,
            "counts": counts[t.id],
            "created_at": t.created_at,
            "updated_at": t.updated_at,
            "scoring_job_id": job.id if job is not None else None,
        }
        for t in topics
    ]


# --- assignments -------------------------------------------------------------------------------

_VISIBLE = (AssignmentStatus.suggested, AssignmentStatus.accepted)


def _assignments() -> Any:
    return (
        select(
            TranscriptionTopic,
            Topic.name,
            Transcription,
            AudioFile.title,
            AudioFile.original_filename,
        )
        .join(Topic, Topic.id == TranscriptionTopic.topic_id)
        .join(Transcription, Transcription.id == TranscriptionTopic.transcription_id)
        .join(AudioFile, AudioFile.id == Transcription.audio_file_id)
    )


def assignment_out(
    row: TranscriptionTopic, topic_name: str, t: Transcription, title: str | None, filename: str
) -> dict[str, Any]:
    return {
        "transcription_id": row.transcription_id,
        "topic_id": row.topic_id,
        "topic_name": topic_name,
        "title": title or filename,
        "transcription_status": t.status,
        "duration": t.duration,
        "status": row.status,
        "assigned_by": row.assigned_by,
        "user_reviewed": row.user_reviewed,
        "ai_confidence": row.ai_confidence,
        "ai_reasoning": row.ai_reasoning,
        "passages": passages_of(row.ai_passages),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "reviewed_at": row.reviewed_at,
    }


async def _page(
    session: AsyncSession, stmt: Select[Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    from verbatim.kit.pagination import check_window

    check_window(limit, offset)
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.execute(stmt.limit(limit).offset(offset))).all()
    return [assignment_out(*row) for row in rows], int(total or 0)


def _by_confidence(stmt: Select[Any]) -> Select[Any]:
    # Most confident first; by-hand assignments (no confidence) after them, newest first.
    return stmt.order_by(
        TranscriptionTopic.ai_confidence.desc().nulls_last(),
        TranscriptionTopic.created_at.desc(),
        TranscriptionTopic.transcription_id,
        TranscriptionTopic.topic_id,
    )


def _statuses(status: AssignmentStatus | None) -> tuple[AssignmentStatus, ...]:
    return (status,) if status is not None else _VISIBLE


async def topic_transcriptions(
    session: AsyncSession,
    user: User,
    topic_id: uuid.UUID,
    *,
    status: AssignmentStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    topic = await get_topic(session, user, topic_id)
    stmt = _assignments().where(
        TranscriptionTopic.topic_id == topic.id,
        visible(Transcription, user),
        TranscriptionTopic.status.in_(_statuses(status)),
    )
    return await _page(session, _by_confidence(stmt), limit, offset)


async def transcription_topics(
    session: AsyncSession,
    user: User,
    transcription_id: uuid.UUID,
    *,
    status: AssignmentStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    transcription = await get_transcription(session, user, transcription_id)
    stmt = _assignments().where(
        TranscriptionTopic.transcription_id == transcription.id,
        visible(Topic, user),
        TranscriptionTopic.status.in_(_statuses(status)),
    )
    return await _page(session, _by_confidence(stmt), limit, offset)


async def set_assignment(
    session: AsyncSession,
    user: User,
    transcription_id: uuid.UUID,
    topic_id: uuid.UUID,
    body: AssignmentSet,
) -> dict[str, Any]:
    """Accept or reject a suggestion, or assign by hand. A rejection is kept (the scorer never
    suggests that topic for that transcription again) until the user accepts it after all."""
    transcription = await get_transcription(session, user, transcription_id)
    topic = await get_topic(session, user, topic_id)
    status = AssignmentStatus(body.status)
    now = utcnow()
    # One statement, so two concurrent decisions (or a decision and a scoring job) on a new
    # pair cannot both insert: the later one updates the row the first one wrote.
    stmt = insert(TranscriptionTopic).values(
        transcription_id=transcription.id,
        topic_id=topic.id,
        status=status,
        assigned_by=AssignedBy.user,
        user_reviewed=True,
        reviewed_at=now,
        created_at=now,
        updated_at=now,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["transcription_id", "topic_id"],
            set_={
                "status": stmt.excluded.status,
                "user_reviewed": True,
                "reviewed_at": now,
                "updated_at": now,
            },
        )
    )
    items = (
        await session.execute(
            _assignments()
            .where(
                TranscriptionTopic.transcription_id == transcription.id,
                TranscriptionTopic.topic_id == topic.id,
            )
            .execution_options(populate_existing=True)
        )
    ).one()
    return assignment_out(*items)


# --- scoring jobs --------------------------------------------------------------------------------


async def queue_scoring(
    session: AsyncSession,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    *,
    topic_id: uuid.UUID | None = None,
    transcription_id: uuid.UUID | None = None,
) -> Job:
    """A `topic_scoring` job (task topics.score) in the caller's transaction: one topic against
    every indexed transcription of the user, or one transcription against every topic."""
    assert (topic_id is None) != (transcription_id is None)
    payload: dict[str, Any] = (
        {"topic_id": str(topic_id)} if topic_id else {"transcription_id": str(transcription_id)}
    )
    job = Job(
        user_id=user_id,
        tenant_id=tenant_id,
        type=JobType.topic_scoring,
        transcription_id=transcription_id,
        stage="queued",
        payload=payload,
    )
    session.add(job)
    await session.flush()
    from verbatim.library.tasks import score_topics

    await defer(session, job, score_topics)
    return job


async def queue_scoring_after_indexing(
    session: AsyncSession,
    transcription_id: uuid.UUID,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
) -> Job | None:
    """Called by search.index in the transaction that stores a transcription's chunks: score it
    against its tenant's topics, when it has any."""
    has_topics = await session.scalar(select(Topic.id).where(Topic.tenant_id == tenant_id).limit(1))
    if has_topics is None:
        return None
    return await queue_scoring(session, user_id, tenant_id, transcription_id=transcription_id)
