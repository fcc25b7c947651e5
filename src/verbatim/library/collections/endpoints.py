"""Collections over HTTP: /api/v1/collections."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from verbatim.deps import CurrentUser, ServicesDep, SessionDep, SettingsDep
from verbatim.errors import AppError, Conflict
from verbatim.kit.http import absolute_url, content_disposition, range_response
from verbatim.kit.pagination import DEFAULT_LIMIT, Limit, Offset, PageQuery
from verbatim.library.collections import service
from verbatim.library.collections.schemas import (
    CollectionCreate,
    CollectionExportCreate,
    CollectionExportStarted,
    CollectionItemOut,
    CollectionItemPage,
    CollectionOut,
    CollectionPage,
    CollectionUpdate,
    ItemAdd,
    ItemMove,
)
from verbatim.models import JobStatus
from verbatim.storage import ObjectNotFound

router = APIRouter(prefix="/api/v1/collections", tags=["collections"])


class ExportExpired(AppError):
    status_code = 410
    code = "export_expired"
    message = "The export was deleted after its retention time; export the collection again"


@router.post(
    "",
    response_model=CollectionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a collection",
)
async def create_collection(
    body: CollectionCreate, user: CurrentUser, session: SessionDep
) -> object:
    """A new, empty collection. Names need not be unique."""
    collection = await service.create_collection(session, user, body)
    return (await service.describe(session, [collection]))[0]


@router.get("", response_model=CollectionPage, summary="List your collections")
async def list_collections(user: CurrentUser, session: SessionDep, page: PageQuery) -> object:
    """Newest first, each with its item count and total duration. Follow `next_cursor` (pass
    it as `cursor`) for the next page; `offset` works too, up to 10,000."""
    result = await service.list_collections(session, user, page=page)
    return {**result.response(), "items": await service.describe(session, result.items)}


@router.get("/{collection_id}", response_model=CollectionOut, summary="Get a collection")
async def get_collection(
    collection_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> object:
    collection = await service.get_collection(session, user, collection_id)
    return (await service.describe(session, [collection]))[0]


@router.patch("/{collection_id}", response_model=CollectionOut, summary="Rename or describe")
async def update_collection(
    collection_id: uuid.UUID, body: CollectionUpdate, user: CurrentUser, session: SessionDep
) -> object:
    """Change the name and/or description (`description: null` clears it)."""
    collection = await service.update_collection(session, user, collection_id, body)
    return (await service.describe(session, [collection]))[0]


@router.delete(
    "/{collection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a collection (never its transcriptions)",
)
async def delete_collection(
    collection_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> Response:
    await service.delete_collection(session, user, collection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{collection_id}/items",
    response_model=CollectionItemPage,
    summary="The collection's transcriptions, in order",
)
async def list_items(
    collection_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> object:
    """In the collection's order, each with title, duration and transcription status."""
    items, total = await service.list_items(
        session, user, collection_id, limit=limit, offset=offset
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "/{collection_id}/items",
    response_model=CollectionItemOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a transcription",
    responses={
        409: {"description": "already_in_collection"},
        422: {"description": "anchor_not_in_collection, invalid_move"},
    },
)
async def add_item(
    collection_id: uuid.UUID, body: ItemAdd, user: CurrentUser, session: SessionDep
) -> object:
    """Add one of your transcriptions, at the end or `before`/`after` an item. A transcription
    may be in any number of collections; another user's is 404 `transcription_not_found`."""
    return await service.add_item(session, user, collection_id, body)


@router.post(
    "/{collection_id}/items/{transcription_id}/move",
    response_model=CollectionItemOut,
    summary="Move an item before or after another",
    responses={422: {"description": "anchor_not_in_collection, invalid_move"}},
)
async def move_item(
    collection_id: uuid.UUID,
    transcription_id: uuid.UUID,
    body: ItemMove,
    user: CurrentUser,
    session: SessionDep,
) -> object:
    """Place the item right `before` or right `after` another item of the collection. Moves
    of one collection are applied one at a time, so concurrent moves never mix up the order."""
    return await service.move_item(session, user, collection_id, transcription_id, body)


@router.delete(
    "/{collection_id}/items/{transcription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a transcription from the collection",
)
async def remove_item(
    collection_id: uuid.UUID, transcription_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> Response:
    """The transcription itself stays."""
    await service.remove_item(session, user, collection_id, transcription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{collection_id}/exports",
    response_model=CollectionExportStarted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Export the collection as a zip (a job)",
    responses={
        409: {"description": "collection_empty"},
        422: {"description": "unsupported_format"},
    },
)
async def export_collection(
    collection_id: uuid.UUID,
    body: CollectionExportCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    """Queue a `collection_export` job: one file per format for every completed transcription,
    in the collection's order, plus `manifest.json` (order, titles, what was skipped). Follow it
    at GET /api/v1/jobs/{job_id}; download it from `download_url` once completed."""
    job = await service.request_export(session, user, collection_id, body, settings)
    return {
        "job_id": job.id,
        "status": job.status,
        "download_url": service.export_download_path(collection_id, job.id),
    }


@router.get(
    "/{collection_id}/exports/{job_id}",
    response_class=Response,
    summary="Download an export",
    responses={
        200: {"content": {"application/zip": {}}},
        307: {"description": "S3 storage: redirect to a short-lived presigned GET"},
        409: {"description": "export_not_ready"},
        410: {"description": "export_expired"},
    },
)
async def download_export(
    collection_id: uuid.UUID,
    job_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> Response:
    """The zip of a completed export job; only its owner can fetch it."""
    job = await service.get_export_job(session, user, collection_id, job_id)
    if job.status is not JobStatus.completed:
        raise Conflict(
            f"The export is {job.status.value}",
            code="export_not_ready",
            details={"status": job.status.value, "error_code": job.error_code},
        )
    key = str(job.payload["export_key"])
    filename = str(job.detail.get("filename") or "collection.zip")
    storage = services.storage
    try:
        info = await asyncio.to_thread(storage.info, key)
    except ObjectNotFound as exc:
        raise ExportExpired() from exc
    headers = {
        "Content-Disposition": content_disposition(filename),
        "Cache-Control": "private, no-store",
    }
    if storage.prefers_redirect:
        url = await asyncio.to_thread(
            storage.presigned_get,
            key,
            services.settings.presigned_get_expires_s,
            filename,
            "application/zip",
        )
        return RedirectResponse(
            absolute_url(request, url, services.settings.public_url), 307, headers=headers
        )
    return range_response(
        request,
        lambda start, end: storage.read_range(key, start, end),
        info.size,
        "application/zip",
        headers,
    )
