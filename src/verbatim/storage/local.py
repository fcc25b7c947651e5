"""Media on the local filesystem under one root directory."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from verbatim.storage.base import ObjectInfo, ObjectNotFound, check_key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ObjectNotFound(key)
        return path

    def put_file(self, source: Path, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Same filesystem: a rename is atomic.
            os.replace(source, target)
        except OSError:
            # Another filesystem: copy beside the target, then rename into place.
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
            source.unlink(missing_ok=True)

    def info(self, key: str) -> ObjectInfo:
        try:
            st = self._path(key).stat()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        return ObjectInfo(size=st.st_size, modified_at=datetime.fromtimestamp(st.st_mtime, UTC))

    def read_range(
        self, key: str, start: int, end: int, chunk_size: int = 1024 * 1024
    ) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        with handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = handle.read(min(chunk_size, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.exists():
            raise ObjectNotFound(key)
        yield path

    def check_writable(self) -> None:
        probe = self.root / f".write-check-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
