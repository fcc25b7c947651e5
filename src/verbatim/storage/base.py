"""The one storage interface; nothing outside this package knows which backend is in use.

Methods are synchronous (file and network I/O); async callers run them in a thread.

Keys are relative paths: `uploads/...` (media, one object per audio row), `staging/{upload_id}`
(direct uploads before they are completed) and `exports/...` (short-lived transcript exports).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from verbatim.errors import AppError

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")

MEDIA_PREFIX = "uploads/"
STAGING_PREFIX = "staging/"
EXPORTS_PREFIX = "exports/"


class StorageError(AppError):
    """The backend refused the request for good (missing bucket, denied access, bad key)."""

    status_code = 502
    code = "storage_error"
    message = "The storage backend refused the request"


class ObjectNotFound(StorageError):
    status_code = 404
    code = "object_not_found"
    message = "The stored object does not exist"


class StorageUnavailable(StorageError):
    """The backend could not be reached, or kept failing, after every retry."""

    status_code = 503
    code = "storage_unavailable"
    message = "Media storage is unavailable; try again shortly"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "5"})


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    modified_at: datetime


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    modified_at: datetime


@dataclass(frozen=True)
class PartInfo:
    part_number: int
    size: int
    etag: str


@dataclass(frozen=True)
class MultipartUpload:
    key: str
    upload_id: str
    initiated_at: datetime


def check_key(key: str) -> str:
    """Keys are relative, made of safe characters, and never climb out of the root."""
    if not _SAFE_KEY.match(key) or ".." in key.split("/") or "//" in key:
        raise StorageError(f"unsafe storage key: {key!r}")
    return key


class Storage(Protocol):
    # True when clients should fetch media straight from the store (a presigned GET redirect)
    # rather than through the API.
    prefers_redirect: bool

    def put_file(self, source: Path, key: str, content_type: str | None = None) -> None:
        """Move a finished local file under key atomically (never visible half-written).

        The source file is consumed on success; on failure it is left for the caller."""

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    def move(self, source_key: str, key: str, content_type: str | None = None) -> None:
        """Give an object a new key; the new key appears only complete."""

    def copy(self, source_key: str, key: str, content_type: str | None = None) -> None:
        """The object's bytes under a second key too (appearing only complete); the source
        stays, so a caller can delete it once its database transaction committed."""

    def info(self, key: str) -> ObjectInfo: ...

    def read_range(self, key: str, start: int, end: int, chunk_size: int = ...) -> Iterator[bytes]:
        """Bytes start..end inclusive."""
        ...

    def delete(self, key: str) -> None:
        """Remove key; a missing key is not an error (deletes are retried)."""

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the object's bytes for libraries that need a path (read only)."""
        ...

    def list_objects(self, prefix: str) -> Iterator[ListedObject]: ...

    def presigned_get(
        self, key: str, expires_s: int, filename: str, content_type: str, inline: bool = True
    ) -> str:
        """A URL that serves the object (with Range) to anyone holding it, until it expires.

        An absolute URL, or a path on this API ("/api/...") the caller makes absolute."""
        ...

    def presigned_put(self, key: str, expires_s: int, max_bytes: int) -> str: ...

    def create_multipart(self, key: str) -> str:
        """Start a multipart upload; returns its upload id."""
        ...

    def presigned_part(
        self, key: str, upload_id: str, part_number: int, expires_s: int, max_bytes: int
    ) -> str: ...

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """Parts received so far; ObjectNotFound when the upload does not exist (any more)."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[PartInfo]) -> None: ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished multipart upload and its parts; a missing one is not an error."""

    def list_multipart(self, prefix: str) -> list[MultipartUpload]: ...

    def remove_partial(self, older_than: datetime) -> int:
        """Remove the backend's own leftovers of interrupted writes; how many."""
        ...

    def check_writable(self) -> None: ...


@asynccontextmanager
async def local_copy(storage: Storage, key: str) -> AsyncIterator[Path]:
    """`storage.local_path` for async code: a download (S3) never runs on the event loop."""
    manager = storage.local_path(key)
    path = await asyncio.to_thread(manager.__enter__)
    try:
        yield path
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)
