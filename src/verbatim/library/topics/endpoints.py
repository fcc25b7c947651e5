"""Topics over HTTP: /api/v1/topics and a transcription's topics."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import Response

from verbatim.deps import CurrentUser, SessionDep
from verbatim.kit.pagination import DEFAULT_LIMIT, Limit, Offset
from verbatim.library.topics import service
from verbatim.library.topics.schemas import (
    AssignmentOut,
    AssignmentPage,
    AssignmentSet,
    TopicCreate,
    TopicOut,
    TopicPage,
    TopicUpdate,
)
from verbatim.models import AssignmentStatus

router = APIRouter(prefix="/api/v1", tags=["topics"])

_STATUS = Query(
    description="Only assignments in this state (default: suggested and accepted)",
)


@router.post(
    "/topics",
    response_model=TopicOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a topic",
    responses={409: {"description": "topic_name_taken"}},
)
async def create_topic(body: TopicCreate, user: CurrentUser, session: SessionDep) -> object:
    """A topic of your own. Names are unique per user, whatever their case. Your completed
    transcriptions are scored against it in the background (`scoring_job_id`)."""
    topic, job = await service.create_topic(session, user, body)
    return (await service.describe(session, [topic], job))[0]


@router.get("/topics", response_model=TopicPage, summary="List your topics with counts")
async def list_topics(
    user: CurrentUser, session: SessionDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> object:
    """By name, each with its counts of suggested, accepted and rejected transcriptions."""
    items, total = await service.list_topics(session, user, limit=limit, offset=offset)
    return {
        "items": await service.describe(session, items),
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/topics/{topic_id}", response_model=TopicOut, summary="Get a topic")
async def get_topic(topic_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    topic = await service.get_topic(session, user, topic_id)
    return (await service.describe(session, [topic]))[0]


@router.patch(
    "/topics/{topic_id}",
    response_model=TopicOut,
    summary="Rename or redescribe a topic",
    responses={409: {"description": "topic_name_taken"}},
)
async def update_topic(
    topic_id: uuid.UUID, body: TopicUpdate, user: CurrentUser, session: SessionDep
) -> object:
    """A changed name or description re-scores your transcriptions in the background:
    suggestions are replaced, accepted and rejected ones stay."""
    topic, job = await service.update_topic(session, user, topic_id, body)
    return (await service.describe(session, [topic], job))[0]


@router.delete(
    "/topics/{topic_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a topic (never the transcriptions)",
)
async def delete_topic(topic_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    await service.delete_topic(session, user, topic_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/topics/{topic_id}/transcriptions",
    response_model=AssignmentPage,
    summary="A topic's transcriptions, most confident first",
)
async def topic_transcriptions(
    topic_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[AssignmentStatus | None, _STATUS] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> object:
    """By `ai_confidence` (highest first; assigned by hand last), with the reasoning and the
    passages (timestamps) that led to each suggestion."""
    items, total = await service.topic_transcriptions(
        session, user, topic_id, status=status, limit=limit, offset=offset
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/transcriptions/{transcription_id}/topics",
    response_model=AssignmentPage,
    summary="A transcription's topics and suggestions",
)
async def transcription_topics(
    transcription_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[AssignmentStatus | None, _STATUS] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> object:
    items, total = await service.transcription_topics(
        session, user, transcription_id, status=status, limit=limit, offset=offset
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.put(
    "/transcriptions/{transcription_id}/topics/{topic_id}",
    response_model=AssignmentOut,
    summary="Accept or reject a suggestion, or assign a topic by hand",
)
async def set_assignment(
    transcription_id: uuid.UUID,
    topic_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    body: AssignmentSet | None = None,
) -> object:
    """`accepted` (the default) accepts a suggestion or assigns the topic by hand; `rejected`
    rejects it: that topic is then never suggested again for this transcription."""
    return await service.set_assignment(
        session, user, transcription_id, topic_id, body or AssignmentSet()
    )
