"""Collections: CRUD, items in a kept order, moves, and the export job's request.

Ownership is checked in one place, `owned_collections(user)`; transcriptions added must be the
caller's own (`transcriptions.service.get_transcription`).

Order. Each item has a sparse integer `position` (gaps of POSITION_GAP). Adding or moving an
item takes the midpoint between its new neighbours, so it rewrites one row; when two neighbours
are adjacent integers the whole collection is renumbered first (rare: after ~16 inserts at one
spot). Every change to a collection's items locks the collection row (`FOR NO KEY UPDATE`), so
concurrent adds and moves on one collection run one after the other, each seeing the order the
previous one committed; a unique (collection, position) constraint backs this up. Collections
never lock each other.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from verbatim.audit import service as audit
from verbatim.config import Settings
from verbatim.errors import Conflict, NotFound, ValidationFailed
from verbatim.jobs.service import defer
from verbatim.kit.pagination import KeysetPage, PageRequest, keyset_paginate, paginate
from verbatim.library.collections.schemas import (
    CollectionCreate,
    CollectionExportCreate,
    CollectionUpdate,
    ItemAdd,
    ItemMove,
)
from verbatim.models import (
    AudioFile,
    Collection,
    Job,
    JobType,
    Transcription,
    TranscriptionCollection,
    User,
)
from verbatim.models.base import utcnow
from verbatim.quotas import service as quotas
from verbatim.tenancy.scope import tenant_of, visible
from verbatim.transcriptions import export
from verbatim.transcriptions.service import get_transcription

POSITION_GAP = 1 << 16


def owned_collections(user: User) -> Select[Collection]:
    return select(Collection).where(visible(Collection, user))


async def get_collection(
    session: AsyncSession, user: User, collection_id: uuid.UUID, *, lock: bool = False
) -> Collection:
    stmt = owned_collections(user).where(Collection.id == collection_id)
    if lock:
        # Serialises changes to this collection's items (see the module docstring).
        stmt = stmt.with_for_update(key_share=True)
    collection = await session.scalar(stmt)
    if collection is None:
        raise NotFound("Collection not found", code="collection_not_found")
    return collection


async def collection_stats(
    session: AsyncSession, collection_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, float]]:
    """(item count, seconds of audio) per collection."""
    if not collection_ids:
        return {}
    rows = await session.execute(
        select(
            TranscriptionCollection.collection_id,
            func.count(),
            func.coalesce(func.sum(func.coalesce(Transcription.duration, 0.0)), 0.0),
        )
        .join(Transcription, Transcription.id == TranscriptionCollection.transcription_id)
        .where(TranscriptionCollection.collection_id.in_(collection_ids))
        .group_by(TranscriptionCollection.collection_id)
    )
    return {cid: (int(n), float(seconds)) for cid, n, seconds in rows}


async def describe(session: AsyncSession, collections: list[Collection]) -> list[dict[str, Any]]:
    stats = await collection_stats(session, [c.id for c in collections])
    return [
        {
            "id": c.id,
            "name": c.name,
            "description": c.description,
            "item_count": stats.get(c.id, (0, 0.0))[0],
            "total_duration": round(stats.get(c.id, (0, 0.0))[1], 3),
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }
        for c in collections
    ]


async def create_collection(
    session: AsyncSession, user: User, body: CollectionCreate
) -> Collection:
    collection = Collection(
        user_id=user.id, tenant_id=tenant_of(user), name=body.name, description=body.description
    )
    session.add(collection)
    await session.flush()
    await session.refresh(collection)
    return collection


async def list_collections(session: AsyncSession, user: User, *, page: PageRequest) -> KeysetPage:
    """Newest first, a keyset page at a time (ix_collection_user_created)."""
    return await keyset_paginate(
        session, owned_collections(user), page, Collection.created_at, Collection.id
    )


async def update_collection(
    session: AsyncSession, user: User, collection_id: uuid.UUID, body: CollectionUpdate
) -> Collection:
    collection = await get_collection(session, user, collection_id)
    if "name" in body.model_fields_set and body.name is not None:
        collection.name = body.name
    if "description" in body.model_fields_set:
        collection.description = body.description
    await session.flush()
    await session.refresh(collection)
    return collection


async def delete_collection(session: AsyncSession, user: User, collection_id: uuid.UUID) -> None:
    """The collection and its item rows go; the transcriptions stay."""
    collection = await get_collection(session, user, collection_id, lock=True)
    await session.delete(collection)
    await session.flush()
    await audit.record_for(session, user, audit.Action.delete, "collection", collection_id)


# --- items -------------------------------------------------------------------------------------


def _items(collection_id: uuid.UUID) -> Select[TranscriptionCollection]:
    return select(TranscriptionCollection).where(
        TranscriptionCollection.collection_id == collection_id
    )


async def list_items(
    session: AsyncSession, user: User, collection_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    collection = await get_collection(session, user, collection_id)
    stmt = (
        _items(collection.id)
        .options(joinedload(TranscriptionCollection.transcription))
        .order_by(TranscriptionCollection.position, TranscriptionCollection.transcription_id)
    )
    rows, total = await paginate(session, stmt, limit, offset)
    titles = await audio_titles(session, [row.transcription.audio_file_id for row in rows])
    return [
        item_out(row, offset + i, titles.get(row.transcription.audio_file_id, ""))
        for i, row in enumerate(rows)
    ], total


async def audio_titles(session: AsyncSession, audio_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not audio_ids:
        return {}
    rows = await session.execute(
        select(AudioFile.id, AudioFile.title, AudioFile.original_filename).where(
            AudioFile.id.in_(set(audio_ids))
        )
    )
    return {aid: title or filename for aid, title, filename in rows}


def item_out(row: TranscriptionCollection, position: int, title: str) -> dict[str, Any]:
    t = row.transcription
    return {
        "transcription_id": t.id,
        "audio_file_id": t.audio_file_id,
        "position": position,
        "title": title,
        "status": t.status,
        "duration": t.duration,
        "language": t.language,
        "added_at": row.added_at,
    }


async def _item(
    session: AsyncSession, collection_id: uuid.UUID, transcription_id: uuid.UUID
) -> TranscriptionCollection | None:
    item: TranscriptionCollection | None = await session.scalar(
        _items(collection_id)
        .where(TranscriptionCollection.transcription_id == transcription_id)
        .options(joinedload(TranscriptionCollection.transcription))
    )
    return item


async def _ordinal(session: AsyncSession, item: TranscriptionCollection) -> int:
    before = await session.scalar(
        select(func.count()).where(
            TranscriptionCollection.collection_id == item.collection_id,
            TranscriptionCollection.position < item.position,
        )
    )
    return int(before or 0)


async def _anchor_position(
    session: AsyncSession, collection_id: uuid.UUID, anchor_id: uuid.UUID
) -> int:
    position = await session.scalar(
        select(TranscriptionCollection.position).where(
            TranscriptionCollection.collection_id == collection_id,
            TranscriptionCollection.transcription_id == anchor_id,
        )
    )
    if position is None:
        raise ValidationFailed(
            "The transcription to place it next to is not in this collection",
            code="anchor_not_in_collection",
            details={"transcription_id": str(anchor_id)},
        )
    return int(position)


async def _neighbour(
    session: AsyncSession,
    collection_id: uuid.UUID,
    position: int,
    *,
    below: bool,
    exclude: uuid.UUID | None,
) -> int | None:
    column = TranscriptionCollection.position
    stmt = select(func.max(column) if below else func.min(column)).where(
        TranscriptionCollection.collection_id == collection_id,
        column < position if below else column > position,
    )
    if exclude is not None:
        stmt = stmt.where(TranscriptionCollection.transcription_id != exclude)
    value = await session.scalar(stmt)
    return None if value is None else int(value)


async def _renumber(session: AsyncSession, collection_id: uuid.UUID) -> None:
    """Spread the positions out again (1, 2, 3, ... times the gap), order unchanged."""
    await session.execute(
        text(
            """
            UPDATE transcription_collection tc
            SET position = r.rn * :gap
            FROM (
                SELECT transcription_id,
                       row_number() OVER (ORDER BY position, transcription_id) AS rn
                FROM transcription_collection WHERE collection_id = :cid
            ) r
            WHERE tc.collection_id = :cid AND tc.transcription_id = r.transcription_id
            """
        ),
        {"gap": POSITION_GAP, "cid": collection_id},
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, TranscriptionCollection):
            session.expire(obj, ["position"])


async def _new_position(
    session: AsyncSession, collection_id: uuid.UUID, place: ItemAdd | ItemMove, moving: uuid.UUID
) -> int:
    """A free position at the requested place, leaving `moving` itself out of the picture."""
    anchor_id = place.before or place.after
    if anchor_id is None:  # at the end
        last = await session.scalar(
            select(func.max(TranscriptionCollection.position)).where(
                TranscriptionCollection.collection_id == collection_id,
                TranscriptionCollection.transcription_id != moving,
            )
        )
        return POSITION_GAP if last is None else int(last) + POSITION_GAP
    if anchor_id == moving:
        raise ValidationFailed("An item cannot be placed next to itself", code="invalid_move")
    below = place.before is not None
    for attempt in range(2):
        anchor = await _anchor_position(session, collection_id, anchor_id)
        other = await _neighbour(session, collection_id, anchor, below=below, exclude=moving)
        if other is None:
            return anchor - POSITION_GAP if below else anchor + POSITION_GAP
        low, high = (other, anchor) if below else (anchor, other)
        if high - low >= 2:
            return (low + high) // 2
        if attempt == 0:
            await _renumber(session, collection_id)
    raise AssertionError("renumbering leaves gaps")  # pragma: no cover


async def add_item(
    session: AsyncSession, user: User, collection_id: uuid.UUID, body: ItemAdd
) -> dict[str, Any]:
    collection = await get_collection(session, user, collection_id, lock=True)
    # Another user's transcription is "not found", like any id that is not yours.
    transcription = await get_transcription(session, user, body.transcription_id)
    if await _item(session, collection.id, transcription.id) is not None:
        raise Conflict(
            "The transcription is already in this collection", code="already_in_collection"
        )
    position = await _new_position(session, collection.id, body, transcription.id)
    session.add(
        TranscriptionCollection(
            collection_id=collection.id, transcription_id=transcription.id, position=position
        )
    )
    collection.updated_at = utcnow()
    await session.flush()
    return await _item_answer(session, collection.id, transcription.id)


async def _item_answer(
    session: AsyncSession, collection_id: uuid.UUID, transcription_id: uuid.UUID
) -> dict[str, Any]:
    item = await _item(session, collection_id, transcription_id)
    assert item is not None
    titles = await audio_titles(session, [item.transcription.audio_file_id])
    return item_out(
        item, await _ordinal(session, item), titles.get(item.transcription.audio_file_id, "")
    )


async def _locked_item(
    session: AsyncSession, user: User, collection_id: uuid.UUID, transcription_id: uuid.UUID
) -> tuple[Collection, TranscriptionCollection]:
    collection = await get_collection(session, user, collection_id, lock=True)
    item = await _item(session, collection.id, transcription_id)
    if item is None:
        raise NotFound(
            "The transcription is not in this collection", code="collection_item_not_found"
        )
    return collection, item


async def move_item(
    session: AsyncSession,
    user: User,
    collection_id: uuid.UUID,
    transcription_id: uuid.UUID,
    body: ItemMove,
) -> dict[str, Any]:
    collection, item = await _locked_item(session, user, collection_id, transcription_id)
    item.position = await _new_position(session, collection.id, body, transcription_id)
    collection.updated_at = utcnow()
    await session.flush()
    return await _item_answer(session, collection.id, transcription_id)


async def remove_item(
    session: AsyncSession, user: User, collection_id: uuid.UUID, transcription_id: uuid.UUID
) -> None:
    collection, _ = await _locked_item(session, user, collection_id, transcription_id)
    await session.execute(
        delete(TranscriptionCollection).where(
            TranscriptionCollection.collection_id == collection.id,
            TranscriptionCollection.transcription_id == transcription_id,
        )
    )
    collection.updated_at = utcnow()
    await session.flush()


# --- export ------------------------------------------------------------------------------------


def check_formats(formats: list[str]) -> list[str]:
    wanted: list[str] = []
    for fmt in formats:
        fmt = fmt.strip().lower()
        if fmt not in export.FORMATS:
            raise ValidationFailed(
                f"Unknown format {fmt!r}",
                code="unsupported_format",
                details={"supported": list(export.FORMATS)},
            )
        if fmt not in wanted:
            wanted.append(fmt)
    return wanted


async def request_export(
    session: AsyncSession,
    user: User,
    collection_id: uuid.UUID,
    body: CollectionExportCreate,
    settings: Settings | None = None,
) -> Job:
    """The export job and its queue entry, in the request's transaction."""
    formats = check_formats(body.formats)
    collection = await get_collection(session, user, collection_id)
    count = await session.scalar(
        select(func.count()).where(TranscriptionCollection.collection_id == collection.id)
    )
    if not count:
        raise Conflict("The collection has no transcriptions to export", code="collection_empty")
    if settings is not None:
        await quotas.check_job(session, settings, tenant_of(user))
    job = Job(
        user_id=user.id,
        tenant_id=tenant_of(user),
        type=JobType.collection_export,
        stage="queued",
        payload={"collection_id": str(collection.id), "formats": formats},
    )
    session.add(job)
    await session.flush()
    from verbatim.library.tasks import export_collection

    await defer(session, job, export_collection)
    return job


def export_download_path(collection_id: uuid.UUID | str, job_id: uuid.UUID | str) -> str:
    return f"/api/v1/collections/{collection_id}/exports/{job_id}"


async def get_export_job(
    session: AsyncSession, user: User, collection_id: uuid.UUID, job_id: uuid.UUID
) -> Job:
    job = await session.scalar(
        select(Job).where(
            Job.id == job_id,
            visible(Job, user),
            Job.type == JobType.collection_export,
            Job.payload["collection_id"].astext == str(collection_id),
        )
    )
    if job is None:
        raise NotFound("Export not found", code="export_not_found")
    return job
