"""Media and temporary files are readable by the service's account only: 0600 files, 0700
folders, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ApiUser
from tests.s3 import MotoS3, make_s3_settings
from verbatim.audio.ingest import receive_upload
from verbatim.config import Settings
from verbatim.media.transcode import transcode_to_opus
from verbatim.storage import LocalStorage, make_storage


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: 0644 files, 0755 folders
    yield
    os.umask(old)


def assert_private_tree(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        expected = 0o700 if path.is_dir() else 0o600
        assert mode(path) == expected, f"{path}: {oct(mode(path))}"


async def test_uploaded_media_and_folders_are_private(
    alice: ApiUser, settings: Settings, open_umask: None
) -> None:
    assert (await alice.upload(FIXTURES / "speech.wav")).status_code == 201
    assert any(settings.media_dir.rglob("*.wav"))
    assert_private_tree(settings.media_dir)
    assert mode(settings.tmp_dir) == 0o700


def test_every_local_write_is_private(tmp_path: Path, open_umask: None) -> None:
    storage = LocalStorage(tmp_path / "media", b"k" * 32)
    storage.put_bytes("uploads/u/2026/11/a.bin", b"x")
    source = tmp_path / "loose.bin"
    source.write_bytes(b"y")
    assert mode(source) == 0o644
    storage.put_file(source, "uploads/u/2026/12/b.bin")
    storage.copy("uploads/u/2026/11/a.bin", "exports/c.bin")
    upload_id = storage.create_multipart("staging/x")
    incoming = storage.incoming(None)
    incoming.write(b"part")
    storage.commit_part(incoming, "staging/x", upload_id, 1)
    assert_private_tree(tmp_path / "media")
    storage.complete_multipart("staging/x", upload_id, storage.list_parts("staging/x", upload_id))
    assert_private_tree(tmp_path / "media")


async def test_temporary_files_are_private(tmp_path: Path, open_umask: None) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        yield b"x" * 100
        yield b"\r\n--b--\r\n"

    received = await receive_upload(
        {"content-type": "multipart/form-data; boundary=b"}, body(), tmp_path, 1000
    )
    assert mode(received.path) == 0o600  # created so (os.open with 0600), not chmod-ed after
    out = tmp_path / "out.ogg"
    transcode_to_opus(FIXTURES / "speech.wav", out)
    assert mode(out) == 0o600


def test_s3_local_copies_are_private(
    moto_s3: MotoS3, tmp_path: Path, database_url: str, open_umask: None
) -> None:
    settings = make_s3_settings(tmp_path, database_url, moto_s3.endpoint_url, moto_s3.new_bucket())
    storage = make_storage(settings)
    assert mode(settings.tmp_dir) == 0o700
    storage.put_bytes("uploads/a.bin", b"abc")
    with storage.local_path("uploads/a.bin") as path:
        assert mode(path) == 0o600
