"""Segments of a running transcription, published as they are decoded (streamed answers).

The job writes its results in one transaction at the end; a streamed answer (the OpenAI API's
`stream=true`) wants text sooner. A job asked to stream (`options.stream_segments`) inserts each
decoded segment's text into `partial_segment` as it arrives, in a short transaction of its own
(a few a second on a short clip; only streamed jobs pay for it); the final write deletes them.
A re-run after a crash writes the same indexes again (upsert), so readers that track the next
index never see a segment twice.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.db import session_scope
from verbatim.engines.base import Segment
from verbatim.models import PartialSegment
from verbatim.services import Services


class PartialPublisher:
    def __init__(self, services: Services, transcription_id: uuid.UUID) -> None:
        self.services = services
        self.transcription_id = transcription_id
        self.next_index = 0

    async def add(self, segment: Segment) -> None:
        row = {
            "transcription_id": self.transcription_id,
            "index": self.next_index,
            "start": segment.start,
            "end": segment.end,
            "text": segment.text,
        }
        self.next_index += 1
        stmt = insert(PartialSegment).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[PartialSegment.transcription_id, PartialSegment.index],
            set_={
                "start": stmt.excluded.start,
                "end": stmt.excluded.end,
                "text": stmt.excluded.text,
            },
        )
        try:
            async with session_scope(self.services.sessionmaker) as session:
                await session.execute(stmt)
        except IntegrityError:
            pass  # the transcription was deleted meanwhile; the job is being cancelled


async def clear_partial(session: AsyncSession, transcription_id: uuid.UUID) -> None:
    await session.execute(
        delete(PartialSegment)
        .where(PartialSegment.transcription_id == transcription_id)
        .execution_options(synchronize_session=False)
    )


async def read_partial(
    session: AsyncSession, transcription_id: uuid.UUID, from_index: int
) -> list[tuple[int, str]]:
    rows = await session.execute(
        select(PartialSegment.index, PartialSegment.text)
        .where(
            PartialSegment.transcription_id == transcription_id,
            PartialSegment.index >= from_index,
        )
        .order_by(PartialSegment.index)
    )
    return [(int(i), str(t)) for i, t in rows]
