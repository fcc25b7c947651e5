"""The local backend's stand-in for S3's presigned URLs: PUT an object or a multipart part, GET
an object with Range. No bearer token: the HMAC signature in the URL is the authorisation, as
with S3. With the S3 backend these routes answer 404.

The token is a credential: it is kept out of access logs (`logs.redact_path`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from verbatim.deps import ServicesDep
from verbatim.errors import NotFound, PayloadTooLarge
from verbatim.kit.http import content_disposition, http_date, range_response
from verbatim.storage.base import ObjectNotFound
from verbatim.storage.local import LocalStorage
from verbatim.storage.put_checks import check_put

router = APIRouter(prefix="/api/v1/storage/local", tags=["storage"])

_BATCH_BYTES = 4 * 1024 * 1024
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "signature_invalid, signature_expired"},
    404: {"description": "not_found, upload_not_found"},
}


def _local(services: ServicesDep) -> LocalStorage:
    if not isinstance(services.storage, LocalStorage):
        raise NotFound()
    return services.storage


@router.put(
    "/{token}",
    responses={
        **_ERRORS,
        409: {"description": "upload_completed, upload_aborted"},
        410: {"description": "upload_expired"},
        413: {"description": "file_too_large"},
    },
)
async def put_object(token: str, request: Request, services: ServicesDep) -> Response:
    """Store the request body under the signed key (or as the signed part), atomically."""
    storage = _local(services)
    claims = storage.verify(token, "PUT")
    declared = request.headers.get("content-length", "")
    if claims.max_bytes is not None and declared.isdigit() and int(declared) > claims.max_bytes:
        raise PayloadTooLarge(details={"max_bytes": claims.max_bytes})
    await check_put(services, claims.key)
    if claims.upload_id is not None:
        try:
            await asyncio.to_thread(storage.list_parts, claims.key, claims.upload_id)
        except ObjectNotFound as exc:
            raise NotFound("No such multipart upload", code="upload_not_found") from exc
    incoming = await asyncio.to_thread(storage.incoming, claims.max_bytes)
    try:
        batch = bytearray()
        async for chunk in request.stream():
            batch += chunk
            if len(batch) >= _BATCH_BYTES:
                await asyncio.to_thread(incoming.write, bytes(batch))
                batch.clear()
        if batch:
            await asyncio.to_thread(incoming.write, bytes(batch))
        # The upload may have been completed or aborted while the body was arriving.
        await check_put(services, claims.key)
        if claims.upload_id is not None and claims.part is not None:
            await asyncio.to_thread(
                storage.commit_part, incoming, claims.key, claims.upload_id, claims.part
            )
        else:
            await asyncio.to_thread(storage.commit_incoming, incoming, claims.key)
    except ObjectNotFound as exc:
        await asyncio.to_thread(incoming.discard)
        raise NotFound("No such multipart upload", code="upload_not_found") from exc
    except BaseException:
        await asyncio.to_thread(incoming.discard)
        raise
    return Response(status_code=200, headers={"ETag": incoming.etag})


@router.get("/{token}", response_class=Response, responses=_ERRORS)
@router.head("/{token}", response_class=Response, include_in_schema=False)  # same headers, no body
async def get_object(token: str, request: Request, services: ServicesDep) -> Response:
    """The signed object, with Range (206) and the signed name and type."""
    storage = _local(services)
    claims = storage.verify(token, "GET")
    try:
        info = await asyncio.to_thread(storage.info, claims.key)
    except ObjectNotFound as exc:
        raise NotFound() from exc
    headers = {
        "Cache-Control": "private, max-age=3600",
        "Last-Modified": http_date(info.modified_at),
        "Content-Disposition": content_disposition(claims.filename or "file", claims.inline),
    }
    media_type = claims.content_type or "application/octet-stream"
    key = claims.key
    return range_response(
        request,
        lambda start, end: storage.read_range(key, start, end),
        info.size,
        media_type,
        headers,
        modified_at=info.modified_at,
    )
