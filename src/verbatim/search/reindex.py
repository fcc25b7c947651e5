"""`verbatim search reindex`: (re)build chunks here, in this process, with a progress report.

Used to backfill transcriptions completed before search existed, to move every chunk to a new
embedding model (`VERBATIM_EMBEDDING_MODEL`), or to redo one transcription. Each transcription
is read, chunked and embedded with no transaction open, then its chunks are replaced in one
short transaction (search/indexing.py), so searches keep working meanwhile and a run can be
stopped and started again at any time. With `queue=True` it only queues `search.index` jobs
for the workers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.models import Transcription
from verbatim.search.embedding import model_name
from verbatim.search.indexing import NotIndexable, prepare, read_source, write_chunks
from verbatim.search.service import queue_index, transcriptions_to_reindex


@dataclass
class ReindexReport:
    model: str
    selected: int = 0
    indexed: int = 0
    chunks: int = 0
    queued: int = 0
    skipped: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (id, reason)
    seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


# on_progress(transcriptions done, transcriptions total, chunks written so far)
Progress = Callable[[int, int, int], None]


async def select_transcriptions(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    everything: bool = False,
    transcription_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    async with session_scope(sessionmaker) as session:
        return await transcriptions_to_reindex(
            session,
            model_name(settings),
            everything=everything,
            transcription_id=transcription_id,
        )


async def reindex(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    ids: list[uuid.UUID],
    *,
    queue: bool = False,
    on_progress: Progress | None = None,
) -> ReindexReport:
    report = ReindexReport(model=model_name(settings), selected=len(ids))
    started = time.monotonic()
    for done, transcription_id in enumerate(ids, start=1):
        if queue:
            async with session_scope(sessionmaker) as session:
                transcription = await session.get(Transcription, transcription_id)
                if transcription is not None:
                    await queue_index(session, transcription)
                    report.queued += 1
        else:
            try:
                async with session_scope(sessionmaker) as session:
                    source = await read_source(session, transcription_id)
                prepared = await prepare(source, settings)
                async with session_scope(sessionmaker) as session:
                    written = await write_chunks(session, source, prepared)
                    if written is not None:
                        # New chunks (a new model, say): the owner's topics are scored again.
                        from verbatim.library.topics.service import queue_scoring_after_indexing

                        await queue_scoring_after_indexing(
                            session, source.transcription_id, source.user_id, source.tenant_id
                        )
            except NotIndexable as exc:
                report.skipped.append((transcription_id, exc.code))
            else:
                if written is None:
                    report.skipped.append((transcription_id, "changed_while_indexing"))
                else:
                    report.indexed += 1
                    report.chunks += written
        report.seconds = time.monotonic() - started
        if on_progress is not None:
            on_progress(done, len(ids), report.chunks)
    report.seconds = time.monotonic() - started
    return report
