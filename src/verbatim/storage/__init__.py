"""Media storage behind one interface."""

from __future__ import annotations

from verbatim.config import Settings
from verbatim.storage.base import ObjectInfo, ObjectNotFound, Storage, StorageError
from verbatim.storage.local import LocalStorage


def make_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.media_dir)


__all__ = [
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "Storage",
    "StorageError",
    "make_storage",
]
