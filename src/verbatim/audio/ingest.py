"""Streaming a multipart upload to a temporary file while hashing and counting bytes.

The body is never held in memory: chunks are batched (a few MB) and parsed, hashed and written in
a worker thread, so the event loop only moves bytes. The size limit holds while streaming.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from streaming_form_data import StreamingFormDataParser
from streaming_form_data.parser import ParseFailedException
from streaming_form_data.targets import BaseTarget

from verbatim.errors import AppError, PayloadTooLarge

_BATCH_BYTES = 4 * 1024 * 1024
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers on top of the file itself
FILE_FIELD = "file"


class _TooLarge(Exception):
    pass


class HashingFileTarget(BaseTarget):  # type: ignore[misc]
    """Writes the file part to disk, hashing it and enforcing the size limit as it goes."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__()
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self.sha256 = hashlib.sha256()
        self._file: IO[bytes] | None = None

    def on_start(self) -> None:
        self._file = self.path.open("xb")

    def on_data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise _TooLarge
        self.sha256.update(chunk)
        assert self._file is not None
        self._file.write(chunk)

    def on_finish(self) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    size: int
    sha256: str
    filename: str


async def receive_upload(
    headers: dict[str, str], body: AsyncIterator[bytes], tmp_dir: Path, max_bytes: int
) -> ReceivedFile:
    """Stream the `file` field of a multipart body to tmp_dir. The caller owns the file after."""
    content_type = headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise AppError(
            "Send the file as multipart/form-data in a field named 'file'",
            code="multipart_required",
        )
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _MULTIPART_OVERHEAD:
        raise PayloadTooLarge(details={"max_bytes": max_bytes})
    target = HashingFileTarget(tmp_dir / f"upload-{uuid.uuid4().hex}.part", max_bytes)
    try:
        parser = StreamingFormDataParser(headers=headers)
        parser.register(FILE_FIELD, target)
        batch = bytearray()
        async for chunk in body:
            batch += chunk
            if len(batch) >= _BATCH_BYTES:
                await asyncio.to_thread(parser.data_received, bytes(batch))
                batch.clear()
        if batch:
            await asyncio.to_thread(parser.data_received, bytes(batch))
        target.close()
        if not target._started:
            raise AppError("No file in the field named 'file'", code="file_missing")
        if target.size == 0:
            raise AppError("The file is empty", code="empty_file")
        return ReceivedFile(
            path=target.path,
            size=target.size,
            sha256=target.sha256.hexdigest(),
            filename=target.multipart_filename or "audio",
        )
    except BaseException as exc:
        target.close()
        target.path.unlink(missing_ok=True)
        # The parser may wrap the target's own exception: the byte count tells.
        if isinstance(exc, _TooLarge) or target.size > max_bytes:
            raise PayloadTooLarge(details={"max_bytes": max_bytes}) from exc
        if isinstance(exc, ParseFailedException):
            raise AppError("Malformed multipart body", code="malformed_multipart") from exc
        raise


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, max_length: int = 100) -> str:
    """A name safe in any filesystem and URL: ASCII letters, digits, dot, dash, underscore."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", name).strip("._-")
    if len(name) > max_length:
        stem, dot, ext = name.rpartition(".")
        name = (
            (stem[: max_length - len(ext) - 1] + dot + ext)
            if dot and len(ext) <= 10
            else name[:max_length]
        )
    return name or "audio"
