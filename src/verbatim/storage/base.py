"""The one storage interface; nothing outside this package knows which backend is in use.

Methods are synchronous (file and network I/O); async callers run them in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


class StorageError(Exception):
    pass


class ObjectNotFound(StorageError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    modified_at: datetime


def check_key(key: str) -> str:
    """Keys are relative, made of safe characters, and never climb out of the root."""
    if not _SAFE_KEY.match(key) or ".." in key.split("/") or "//" in key:
        raise StorageError(f"unsafe storage key: {key!r}")
    return key


class Storage(Protocol):
    def put_file(self, source: Path, key: str) -> None:
        """Move a finished local file under key atomically (never visible half-written)."""

    def info(self, key: str) -> ObjectInfo: ...

    def read_range(self, key: str, start: int, end: int, chunk_size: int = ...) -> Iterator[bytes]:
        """Bytes start..end inclusive."""
        ...

    def delete(self, key: str) -> None:
        """Remove key; a missing key is not an error (deletes are retried)."""

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the object's bytes for libraries that need a path."""
        ...

    def check_writable(self) -> None: ...
