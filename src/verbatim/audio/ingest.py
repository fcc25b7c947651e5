"""Streaming a multipart upload to a temporary file while hashing and counting bytes.

The body is never held in memory: chunks are batched (a few MB) and parsed, hashed and written in
a worker thread, so the event loop only moves bytes. The size limit holds while streaming.

The part headers are parsed as browsers write them (python-multipart): `filename="a\\"b.wav"`
and `filename="a%22b.wav"` are both `a"b.wav`, a Windows path keeps its last component, a
name that is not UTF-8 is decoded as Latin-1 (never an error), and `filename*` (RFC 5987) wins
when given. The name kept is the cleaned display name (`kit.filenames.display_name`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from verbatim.errors import AppError, PayloadTooLarge
from verbatim.kit.filenames import display_name, safe_filename

__all__ = ["FILE_FIELD", "ReceivedFile", "receive_upload", "safe_filename"]

_BATCH_BYTES = 4 * 1024 * 1024
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and small fields on top of the file
FILE_FIELD = "file"
# Other fields of the form (the OpenAI API's model, language, ...) are kept up to this many
# bytes in all; past it the request is refused.
MAX_FIELD_BYTES = 64 * 1024
PRIVATE_FILE_MODE = 0o600


class _TooLarge(Exception):
    pass


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_EXTENDED = re.compile(rb"(?:^|;)\s*filename\*\s*=\s*([^;\s]+)", re.IGNORECASE)


def _extended_filename(disposition: bytes) -> str | None:
    """RFC 5987 `filename*=charset'lang'percent-encoded`, or None."""
    match = _EXTENDED.search(disposition)
    if match is None:
        return None
    charset, quote_char, rest = match.group(1).decode("latin-1").partition("'")
    _, _, encoded = rest.partition("'")
    if not quote_char:
        return None
    raw = unquote_to_bytes(encoded)
    try:
        return raw.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return _decode(raw)


def part_filename(disposition: bytes) -> tuple[str | None, str | None]:
    """(field name, file name) from a part's Content-Disposition, as a browser wrote it."""
    _, params = parse_options_header(disposition)
    name = params.get(b"name")
    filename = _extended_filename(disposition)
    if filename is None and b"filename" in params:
        # WHATWG form encoding writes a quote as %22 (and CR, LF as %0D, %0A).
        filename = _decode(params[b"filename"]).replace("%22", '"')
    return (_decode(name) if name is not None else None), filename


class _FilePart:
    """Writes the file part to disk, hashing it and enforcing the size limit as it goes."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.started = False
        self.filename: str | None = None
        self._file: IO[bytes] | None = None

    def start(self, filename: str | None) -> None:
        self.started = True
        self.filename = filename
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise _TooLarge
        self.sha256.update(chunk)
        assert self._file is not None
        self._file.write(chunk)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _TooManyFields(Exception):
    pass


class _FormReader:
    """python-multipart callbacks: the first part named `file` goes to disk; other parts without
    a file name are kept as text fields (MAX_FIELD_BYTES in all), the rest are skipped (their
    size still counts against the body limit)."""

    def __init__(self, boundary: bytes, target: _FilePart, max_body: int) -> None:
        self.target = target
        self.max_body = max_body
        self.received = 0
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._writing = False
        self.fields: dict[str, list[str]] = {}
        self._field_name: str | None = None
        self._field_value = bytearray()
        self._field_bytes = 0
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self.max_body:
            raise _TooLarge
        self.parser.write(data)

    def _part_begin(self) -> None:
        self._headers = {}
        self._field = self._value = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        self._field_name = None
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            return
        name, filename = part_filename(disposition)
        if name == FILE_FIELD and not self.target.started:
            self.target.start(filename)
            self._writing = True
        elif name and name != FILE_FIELD and filename is None:
            self._field_name = name
            self._field_value = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._writing:
            self.target.write(data[start:end])
        elif self._field_name is not None:
            self._field_bytes += end - start
            if self._field_bytes > MAX_FIELD_BYTES:
                raise _TooManyFields
            self._field_value += data[start:end]

    def _part_end(self) -> None:
        if self._writing:
            self._writing = False
            self.target.close()
        elif self._field_name is not None:
            value = _decode(bytes(self._field_value))
            self.fields.setdefault(self._field_name, []).append(value)
            self._field_name = None


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    size: int
    sha256: str
    filename: str
    # The form's other text fields, each name with its values in order.
    fields: dict[str, list[str]] = field(default_factory=dict)


async def receive_upload(
    headers: dict[str, str], body: AsyncIterator[bytes], tmp_dir: Path, max_bytes: int
) -> ReceivedFile:
    """Stream the `file` field of a multipart body to tmp_dir. The caller owns the file after."""
    content_type = headers.get("content-type", "")
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise AppError(
            "Send the file as multipart/form-data in a field named 'file'",
            code="multipart_required",
        )
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _MULTIPART_OVERHEAD:
        raise PayloadTooLarge(details={"max_bytes": max_bytes})
    target = _FilePart(tmp_dir / f"upload-{uuid.uuid4().hex}.part", max_bytes)
    try:
        reader = _FormReader(boundary, target, max_bytes + _MULTIPART_OVERHEAD)
        batch = bytearray()
        async for chunk in body:
            batch += chunk
            if len(batch) >= _BATCH_BYTES:
                await asyncio.to_thread(reader.feed, bytes(batch))
                batch.clear()
        if batch:
            await asyncio.to_thread(reader.feed, bytes(batch))
        reader.parser.finalize()
        target.close()
        if not target.started:
            raise AppError("No file in the field named 'file'", code="file_missing")
        if target.size == 0:
            raise AppError("The file is empty", code="empty_file")
        return ReceivedFile(
            path=target.path,
            size=target.size,
            sha256=target.sha256.hexdigest(),
            filename=display_name(target.filename or ""),
            fields=reader.fields,
        )
    except BaseException as exc:
        target.close()
        target.path.unlink(missing_ok=True)
        if isinstance(exc, _TooManyFields):
            raise AppError(
                f"The form's fields other than the file exceed {MAX_FIELD_BYTES} bytes",
                code="fields_too_large",
            ) from exc
        if isinstance(exc, _TooLarge) or target.size > max_bytes:
            raise PayloadTooLarge(details={"max_bytes": max_bytes}) from exc
        if isinstance(exc, MultipartParseError | UnicodeDecodeError | ValueError):
            raise AppError("Malformed multipart body", code="malformed_multipart") from exc
        raise
