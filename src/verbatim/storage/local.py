"""Media on the local filesystem under one root directory.

Every write lands in `ROOT/.incoming/` first and is renamed into place (same filesystem: atomic),
so no key ever shows a half-written file. Multipart uploads keep their parts as separate files in
`ROOT/.multipart/{upload_id}/` until completed. Names starting with a dot are never keys.
Presigned URLs point at this API (`storage/endpoints.py`) and are signed with HMAC.

Media is private to the service's Unix account: files are created 0600 and folders 0700 (like the
secret file and the database), whatever the process umask.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from verbatim.errors import PayloadTooLarge
from verbatim.storage import presign
from verbatim.storage.base import (
    ListedObject,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    PartInfo,
    StorageError,
    check_key,
)

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_COPY_CHUNK = 4 * 1024 * 1024
FILE_MODE = 0o600
DIR_MODE = 0o700


def make_private_dirs(path: Path) -> None:
    """mkdir -p where every folder created is 0700 (mkdir's mode only covers the last one)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask


def create_private(path: Path) -> IO[bytes]:
    """A new file (never an existing one) open for writing, readable by this account only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    return os.fdopen(fd, "wb")


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


class IncomingFile:
    """A body being received: written to a temporary file, measured, MD5'd for the ETag."""

    def __init__(self, path: Path, max_bytes: int | None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._file: IO[bytes] | None = create_private(path)

    @property
    def etag(self) -> str:
        return f'"{self._md5.hexdigest()}"'

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise PayloadTooLarge(details={"max_bytes": self.max_bytes})
        self._md5.update(data)
        assert self._file is not None
        self._file.write(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class LocalStorage:
    prefers_redirect = False

    def __init__(self, root: Path, signing_key: bytes | None = None) -> None:
        self.root = root.resolve()
        make_private_dirs(self.root)
        self.incoming_dir = self.root / ".incoming"
        self.multipart_dir = self.root / ".multipart"
        make_private_dirs(self.incoming_dir)
        make_private_dirs(self.multipart_dir)
        for folder in (self.root, self.incoming_dir, self.multipart_dir):
            os.chmod(folder, DIR_MODE)  # also when an older version made them 0755
        self.signing_key = signing_key

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ObjectNotFound(key)
        return path

    def _temp(self) -> Path:
        return self.incoming_dir / f"{uuid.uuid4().hex}.part"

    def _publish(self, temp: Path, key: str) -> None:
        target = self._path(key)
        make_private_dirs(target.parent)
        os.chmod(temp, FILE_MODE)  # files from elsewhere (tmp_dir, a library) too
        os.replace(temp, target)

    # --- writing ------------------------------------------------------------------------

    def put_file(self, source: Path, key: str, content_type: str | None = None) -> None:
        try:
            # Same filesystem: a rename is atomic.
            self._publish(source, key)
        except OSError:
            # Another filesystem: copy beside the target, then rename into place.
            partial = self._temp()
            try:
                with source.open("rb") as src, create_private(partial) as out:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
                self._publish(partial, key)
            finally:
                partial.unlink(missing_ok=True)
            source.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        temp = self._temp()
        try:
            with create_private(temp) as out:
                out.write(data)
            self._publish(temp, key)
        finally:
            temp.unlink(missing_ok=True)

    def move(self, source_key: str, key: str, content_type: str | None = None) -> None:
        source = self._path(source_key)
        if not source.is_file():
            raise ObjectNotFound(source_key)
        self._publish(source, key)

    def copy(self, source_key: str, key: str, content_type: str | None = None) -> None:
        """A second name for the same bytes (a hard link: instant, no space), or a copy where
        the filesystem has no hard links. The source stays until it is deleted."""
        source = self._path(source_key)
        if not source.is_file():
            raise ObjectNotFound(source_key)
        temp = self._temp()
        try:
            try:
                os.link(source, temp)
            except OSError:
                with source.open("rb") as src, create_private(temp) as out:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
            self._publish(temp, key)
        finally:
            temp.unlink(missing_ok=True)

    def incoming(self, max_bytes: int | None) -> IncomingFile:
        """A temporary file for a body arriving through a presigned PUT."""
        return IncomingFile(self._temp(), max_bytes)

    def commit_incoming(self, incoming: IncomingFile, key: str) -> None:
        incoming.close()
        self._publish(incoming.path, key)

    # --- reading ------------------------------------------------------------------------

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
        if not path.is_file():
            raise ObjectNotFound(key)
        yield path

    def list_objects(self, prefix: str) -> Iterator[ListedObject]:
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    st = path.stat()
                    yield ListedObject(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    # --- presigned URLs -----------------------------------------------------------------

    def _sign(self, claims: presign.Claims) -> str:
        if self.signing_key is None:
            raise StorageError("This local storage has no signing key for presigned URLs")
        return presign.URL_PREFIX + presign.sign(self.signing_key, claims)

    def presigned_get(
        self, key: str, expires_s: int, filename: str, content_type: str, inline: bool = True
    ) -> str:
        check_key(key)
        expires = int(time.time()) + expires_s
        return self._sign(
            presign.Claims(
                "GET", key, expires, filename=filename, content_type=content_type, inline=inline
            )
        )

    def presigned_put(self, key: str, expires_s: int, max_bytes: int) -> str:
        check_key(key)
        return self._sign(
            presign.Claims("PUT", key, int(time.time()) + expires_s, max_bytes=max_bytes)
        )

    def verify(self, token: str, method: str) -> presign.Claims:
        if self.signing_key is None:
            raise presign.SignatureInvalid()
        claims = presign.verify(self.signing_key, token, method)
        check_key(claims.key)
        return claims

    # --- multipart ----------------------------------------------------------------------

    def _upload_dir(self, key: str, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise ObjectNotFound(upload_id)
        folder = self.multipart_dir / upload_id
        try:
            recorded = (folder / "key").read_text()
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no multipart upload {upload_id}") from exc
        if recorded != key:
            raise ObjectNotFound(f"no multipart upload {upload_id} for {key}")
        return folder

    def create_multipart(self, key: str) -> str:
        check_key(key)
        upload_id = uuid.uuid4().hex
        folder = self.multipart_dir / upload_id
        folder.mkdir(mode=DIR_MODE)
        with create_private(folder / "key") as out:
            out.write(key.encode())
        return upload_id

    def presigned_part(
        self, key: str, upload_id: str, part_number: int, expires_s: int, max_bytes: int
    ) -> str:
        check_key(key)
        expires = int(time.time()) + expires_s
        return self._sign(
            presign.Claims(
                "PUT", key, expires, upload_id=upload_id, part=part_number, max_bytes=max_bytes
            )
        )

    def commit_part(self, incoming: IncomingFile, key: str, upload_id: str, part: int) -> None:
        incoming.close()
        folder = self._upload_dir(key, upload_id)
        etag_temp = self._temp()
        with create_private(etag_temp) as out:
            out.write(incoming.etag.encode())
        os.replace(etag_temp, folder / f"{part:05d}.etag")
        os.replace(incoming.path, folder / f"{part:05d}")

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        folder = self._upload_dir(key, upload_id)
        parts = []
        for path in sorted(folder.iterdir()):
            if path.name.isdigit():
                etag_file = path.with_name(path.name + ".etag")
                etag = etag_file.read_text() if etag_file.exists() else ""
                parts.append(PartInfo(int(path.name), path.stat().st_size, etag))
        return parts

    def complete_multipart(self, key: str, upload_id: str, parts: list[PartInfo]) -> None:
        folder = self._upload_dir(key, upload_id)
        temp = self._temp()
        try:
            with create_private(temp) as out:
                for part in sorted(parts, key=lambda p: p.part_number):
                    try:
                        source = (folder / f"{part.part_number:05d}").open("rb")
                    except FileNotFoundError as exc:
                        raise ObjectNotFound(f"part {part.part_number} was not uploaded") from exc
                    with source:
                        shutil.copyfileobj(source, out, _COPY_CHUNK)
            self._publish(temp, key)
        finally:
            temp.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            folder = self._upload_dir(key, upload_id)
        except ObjectNotFound:
            return
        shutil.rmtree(folder, ignore_errors=True)

    def list_multipart(self, prefix: str) -> list[MultipartUpload]:
        uploads = []
        for folder in sorted(self.multipart_dir.iterdir()):
            try:
                key = (folder / "key").read_text()
                initiated = _mtime(folder / "key")
            except (FileNotFoundError, NotADirectoryError):
                continue
            if key.startswith(prefix):
                uploads.append(MultipartUpload(key, folder.name, initiated))
        return uploads

    # --- housekeeping -------------------------------------------------------------------

    def remove_partial(self, older_than: datetime) -> int:
        removed = 0
        for path in self.incoming_dir.iterdir():
            try:
                if _mtime(path) < older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def check_writable(self) -> None:
        probe = self.incoming_dir / f"write-check-{uuid.uuid4().hex}"
        with create_private(probe) as out:
            out.write(b"ok")
        probe.unlink()
