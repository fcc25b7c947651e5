"""Media in any S3-compatible object store (AWS S3, MinIO, Cloudflare R2, Yandex, ...).

Atomicity comes from S3 itself: an object becomes visible only once its single PUT, its
completed multipart upload or its copy is whole. Transient failures (connection refused or
reset, timeouts, 5xx, throttling) are retried by botocore's "standard" mode: exponential backoff
with jitter, up to `s3_max_attempts` tries; what still fails is `StorageUnavailable` (503).
Anything else S3 refuses (missing bucket, denied access) is a `StorageError` naming S3's code.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from verbatim.kit.http import content_disposition
from verbatim.storage.base import (
    ListedObject,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    PartInfo,
    StorageError,
    StorageUnavailable,
    check_key,
)
from verbatim.storage.local import create_private, make_private_dirs

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MIB = 1024 * 1024
_SINGLE_PUT_MAX = 64 * MIB  # above this put_file uploads in parts
_PART_SIZE = 16 * MIB
_MAX_PARTS = 10_000
_COPY_MAX = 5 * 1024 * MIB  # CopyObject limit; larger objects are copied part by part
_PARALLEL_PARTS = 4
_READ_CHUNK = MIB
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_TRANSIENT = {
    "500",
    "502",
    "503",
    "504",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
}


def translate_errors(func: Callable[P, T]) -> Callable[P, T]:
    """botocore exceptions become the storage package's own, after botocore's retries."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except ClientError as exc:
            raise _from_client_error(exc, func.__name__) from exc
        except BotoCoreError as exc:
            log.warning("s3_unreachable", op=func.__name__, error=str(exc))
            raise StorageUnavailable() from exc

    return wrapper


def _from_client_error(exc: ClientError, op: str) -> StorageError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in _NOT_FOUND:
        return ObjectNotFound(f"{op}: {code}")
    if code in _TRANSIENT:
        log.warning("s3_unavailable", op=op, code=code)
        return StorageUnavailable()
    log.error("s3_refused", op=op, code=code, message=error.get("Message"))
    return StorageError(f"Object storage refused {op}: {code}")


class S3Storage:
    prefers_redirect = True
    # put_file: one PUT up to this size, parts of part_size above (S3: parts >= 5 MiB).
    single_put_max = _SINGLE_PUT_MAX
    part_size = _PART_SIZE

    def __init__(
        self,
        *,
        bucket: str,
        tmp_dir: Path,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str = "auto",
        max_attempts: int = 5,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        self.bucket = bucket
        self.tmp_dir = tmp_dir
        s3_options: Any = {"addressing_style": addressing_style}
        config = Config(
            signature_version="s3v4",
            retries={"mode": "standard", "max_attempts": max_attempts},
            s3=s3_options,
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            max_pool_connections=20,
            # The newer default checksums (CRC trailers) are not spoken by every S3-compatible
            # store; send them only where an operation requires one.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )

    # --- writing ------------------------------------------------------------------------

    @translate_errors
    def put_file(self, source: Path, key: str, content_type: str | None = None) -> None:
        check_key(key)
        size = source.stat().st_size
        extra = {"ContentType": content_type} if content_type else {}
        if size <= self.single_put_max:
            with source.open("rb") as body:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        else:
            self._put_in_parts(source, key, size, extra)
        source.unlink(missing_ok=True)

    def _put_in_parts(self, source: Path, key: str, size: int, extra: dict[str, str]) -> None:
        """A multipart upload, a few parts at a time; aborted on any failure, so a key never
        shows part of a file and no parts are left behind."""
        part_size = max(self.part_size, math.ceil(size / _MAX_PARTS))
        count = math.ceil(size / part_size)
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)[
            "UploadId"
        ]

        def send(number: int) -> dict[str, Any]:
            with source.open("rb") as handle:
                handle.seek((number - 1) * part_size)
                data = handle.read(part_size)
            answer = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}

        try:
            with ThreadPoolExecutor(_PARALLEL_PARTS) as pool:
                parts = list(pool.map(send, range(1, count + 1)))
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._abort_quietly(key, upload_id)
            raise

    @translate_errors
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        check_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    @translate_errors
    def move(self, source_key: str, key: str, content_type: str | None = None) -> None:
        """`copy`, then the source is deleted. A failed delete only leaves a staging object,
        which housekeeping removes; it never fails the move."""
        self.copy(source_key, key, content_type)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=source_key)
        except (ClientError, BotoCoreError) as exc:
            log.warning("s3_staging_delete_failed", key=source_key, error=str(exc))

    @translate_errors
    def copy(self, source_key: str, key: str, content_type: str | None = None) -> None:
        """A server-side copy (part by part above 5 GiB); the source stays."""
        check_key(key)
        size = self.client.head_object(Bucket=self.bucket, Key=check_key(source_key))[
            "ContentLength"
        ]
        extra: dict[str, str] = {}
        if content_type:
            extra = {"ContentType": content_type}
        if size <= _COPY_MAX:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
                MetadataDirective="REPLACE" if content_type else "COPY",
                **extra,
            )
        else:
            self._copy_in_parts(source_key, key, size, extra)

    def _copy_in_parts(self, source_key: str, key: str, size: int, extra: dict[str, str]) -> None:
        part_size = max(1024 * MIB, math.ceil(size / _MAX_PARTS))
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)[
            "UploadId"
        ]
        try:
            parts = []
            for index, start in enumerate(range(0, size, part_size), start=1):
                end = min(start + part_size, size) - 1
                answer = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=index,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": index, "ETag": answer["CopyPartResult"]["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._abort_quietly(key, upload_id)
            raise

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            # Storage is down: the parts stay invisible and housekeeping aborts them later.
            log.warning("s3_abort_failed", key=key, error=str(exc))

    # --- reading ------------------------------------------------------------------------

    @translate_errors
    def info(self, key: str) -> ObjectInfo:
        head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        return ObjectInfo(size=int(head["ContentLength"]), modified_at=head["LastModified"])

    def read_range(
        self, key: str, start: int, end: int, chunk_size: int = 1024 * 1024
    ) -> Iterator[bytes]:
        body = self._get_body(key, f"bytes={start}-{end}")
        try:
            while chunk := self._read(body, chunk_size):
                yield chunk
        finally:
            body.close()

    @translate_errors
    def _get_body(self, key: str, byte_range: str | None = None) -> Any:
        extra = {"Range": byte_range} if byte_range else {}
        return self.client.get_object(Bucket=self.bucket, Key=check_key(key), **extra)["Body"]

    @translate_errors
    def _read(self, body: Any, size: int) -> bytes:
        data: bytes = body.read(size)
        return data

    @translate_errors
    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """Download to a temporary file in tmp_dir, removed when the block ends."""
        make_private_dirs(self.tmp_dir)
        path = self.tmp_dir / f"s3-{uuid.uuid4().hex}.part"
        try:
            body = self._get_body(key)
            try:
                with create_private(path) as out:
                    while chunk := self._read(body, _READ_CHUNK):
                        out.write(chunk)
            finally:
                body.close()
            yield path
        finally:
            path.unlink(missing_ok=True)

    @translate_errors
    def list_objects(self, prefix: str) -> Iterator[ListedObject]:
        # Listing is materialised page by page inside the wrapper so errors are translated.
        return iter(self._list_all(prefix))

    def _list_all(self, prefix: str) -> list[ListedObject]:
        objects = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                objects.append(ListedObject(item["Key"], int(item["Size"]), item["LastModified"]))
        return objects

    # --- presigned URLs -----------------------------------------------------------------

    @translate_errors
    def presigned_get(
        self, key: str, expires_s: int, filename: str, content_type: str, inline: bool = True
    ) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": check_key(key),
                "ResponseContentDisposition": content_disposition(filename, inline),
                "ResponseContentType": content_type,
                "ResponseCacheControl": "private, max-age=3600",
            },
            ExpiresIn=expires_s,
        )
        return url

    @translate_errors
    def presigned_put(self, key: str, expires_s: int, max_bytes: int) -> str:
        # S3 cannot cap a presigned PUT's size; completing the upload checks it instead.
        url: str = self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=expires_s
        )
        return url

    # --- multipart ----------------------------------------------------------------------

    @translate_errors
    def create_multipart(self, key: str) -> str:
        answer = self.client.create_multipart_upload(Bucket=self.bucket, Key=check_key(key))
        return str(answer["UploadId"])

    @translate_errors
    def presigned_part(
        self, key: str, upload_id: str, part_number: int, expires_s: int, max_bytes: int
    ) -> str:
        url: str = self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": check_key(key),
                "UploadId": upload_id,
                "PartNumber": part_number,
            },
            ExpiresIn=expires_s,
        )
        return url

    @translate_errors
    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        parts = []
        paginator = self.client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=check_key(key), UploadId=upload_id):
            for item in page.get("Parts", []):
                parts.append(PartInfo(int(item["PartNumber"]), int(item["Size"]), item["ETag"]))
        return parts

    @translate_errors
    def complete_multipart(self, key: str, upload_id: str, parts: list[PartInfo]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=check_key(key),
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [
                    {"PartNumber": p.part_number, "ETag": p.etag}
                    for p in sorted(parts, key=lambda p: p.part_number)
                ]
            },
        )

    @translate_errors
    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=check_key(key), UploadId=upload_id
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in _NOT_FOUND:
                raise

    @translate_errors
    def list_multipart(self, prefix: str) -> list[MultipartUpload]:
        uploads = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Uploads", []):
                uploads.append(MultipartUpload(item["Key"], item["UploadId"], item["Initiated"]))
        return uploads

    def remove_partial(self, older_than: datetime) -> int:
        # S3 never shows a partial object; unfinished multipart uploads are listed and
        # aborted through list_multipart.
        return 0

    @translate_errors
    def check_writable(self) -> None:
        key = f"health/write-check-{uuid.uuid4().hex}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=b"ok")
        self.client.delete_object(Bucket=self.bucket, Key=key)
