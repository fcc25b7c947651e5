"""Media storage behind one interface."""

from __future__ import annotations

import os

from verbatim.config import Settings
from verbatim.storage.base import (
    EXPORTS_PREFIX,
    MEDIA_PREFIX,
    STAGING_PREFIX,
    ListedObject,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    PartInfo,
    Storage,
    StorageError,
    StorageUnavailable,
    local_copy,
)
from verbatim.storage.local import DIR_MODE, LocalStorage, make_private_dirs
from verbatim.storage.presign import derive_key


def make_storage(settings: Settings) -> Storage:
    # Uploads, downloads and S3 copies pass through tmp_dir: private like the media.
    make_private_dirs(settings.tmp_dir)
    os.chmod(settings.tmp_dir, DIR_MODE)
    if settings.storage == "s3":
        from verbatim.storage.s3 import S3Storage  # boto3 is imported only when S3 is used

        assert settings.s3_bucket is not None
        return S3Storage(
            bucket=settings.s3_bucket,
            tmp_dir=settings.tmp_dir,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            addressing_style=settings.s3_addressing_style,
            max_attempts=settings.s3_max_attempts,
        )
    return LocalStorage(settings.media_dir, derive_key(settings.resolved_secret_key()))


__all__ = [
    "EXPORTS_PREFIX",
    "MEDIA_PREFIX",
    "STAGING_PREFIX",
    "ListedObject",
    "LocalStorage",
    "MultipartUpload",
    "ObjectInfo",
    "ObjectNotFound",
    "PartInfo",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "local_copy",
    "make_storage",
]
