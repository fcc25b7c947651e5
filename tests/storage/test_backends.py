"""The Storage contract, checked the same way on both backends (no API, no database)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.s3 import MotoS3, start_moto
from verbatim.storage import (
    LocalStorage,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageUnavailable,
)
from verbatim.storage.presign import derive_key
from verbatim.storage.s3 import S3Storage

MIB = 1024 * 1024


def make_s3(moto: MotoS3, tmp_path: Path, bucket: str | None = None) -> S3Storage:
    storage = S3Storage(
        bucket=bucket or moto.new_bucket(),
        tmp_dir=tmp_path / "tmp",
        endpoint_url=moto.endpoint_url,
        access_key_id="test",
        secret_access_key="test",
        addressing_style="path",
        max_attempts=2,
    )
    storage.single_put_max = storage.part_size = 5 * MIB  # exercise the multipart path
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "s3":
        yield make_s3(request.getfixturevalue("moto_s3"), tmp_path)
    else:
        yield LocalStorage(tmp_path / "media", derive_key("test"))


def _file(tmp_path: Path, size: int, name: str = "src.bin") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def _read_all(storage: Storage, key: str) -> bytes:
    size = storage.info(key).size
    return b"".join(storage.read_range(key, 0, size - 1))


@pytest.mark.parametrize("size", [1, 1000, 11 * MIB + 3])
def test_put_read_move_delete(storage: Storage, tmp_path: Path, size: int) -> None:
    source, data = _file(tmp_path, size)
    storage.put_file(source, "uploads/u/a.bin", "audio/wav")
    assert not source.exists()  # consumed
    info = storage.info("uploads/u/a.bin")
    assert info.size == size
    assert abs(info.modified_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert _read_all(storage, "uploads/u/a.bin") == data
    if size > 100:
        assert b"".join(storage.read_range("uploads/u/a.bin", 10, 99)) == data[10:100]
    with storage.local_path("uploads/u/a.bin") as path:
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()

    storage.move("uploads/u/a.bin", "uploads/u/b.bin", "audio/wav")
    with pytest.raises(ObjectNotFound):
        storage.info("uploads/u/a.bin")
    assert _read_all(storage, "uploads/u/b.bin") == data
    assert [(o.key, o.size) for o in storage.list_objects("uploads/")] == [
        ("uploads/u/b.bin", size)
    ]
    storage.delete("uploads/u/b.bin")
    storage.delete("uploads/u/b.bin")  # deleting what is gone is fine
    assert list(storage.list_objects("uploads/")) == []


def test_missing_objects_and_unsafe_keys(storage: Storage) -> None:
    for call in (
        lambda: storage.info("uploads/none"),
        lambda: list(storage.read_range("uploads/none", 0, 10)),
        lambda: storage.move("staging/none", "uploads/x"),
    ):
        with pytest.raises(ObjectNotFound):
            call()
    with pytest.raises(ObjectNotFound), storage.local_path("uploads/none"):
        pass
    for key in ("../etc/passwd", "/abs", "a//b", ".hidden", "uploads/../../x"):
        with pytest.raises(StorageError):
            storage.put_bytes(key, b"x")


def test_listing_by_prefix(storage: Storage) -> None:
    for key in ("uploads/a/1", "uploads/b/2", "staging/x", "exports/e"):
        storage.put_bytes(key, key.encode())
    assert [o.key for o in storage.list_objects("uploads/")] == ["uploads/a/1", "uploads/b/2"]
    assert [o.key for o in storage.list_objects("staging/")] == ["staging/x"]
    assert [o.key for o in storage.list_objects("uploads/b")] == ["uploads/b/2"]


def test_multipart_through_presigned_part_urls(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(11 * MIB)
    key = "staging/mp"
    upload_id = storage.create_multipart(key)
    assert [(u.key, u.upload_id) for u in storage.list_multipart("staging/")] == [(key, upload_id)]
    local_api = isinstance(storage, LocalStorage)
    for number, start in ((1, 0), (2, 5 * MIB), (3, 10 * MIB)):
        url = storage.presigned_part(key, upload_id, number, 60, 5 * MIB)
        chunk = data[start : start + 5 * MIB]
        if local_api:  # a path on the API: receive it the way the endpoint does
            incoming = storage.incoming(5 * MIB)
            incoming.write(chunk)
            storage.commit_part(incoming, key, upload_id, number)
        else:
            assert httpx.put(url, content=chunk).status_code == 200
    parts = storage.list_parts(key, upload_id)
    assert [(p.part_number, p.size) for p in parts] == [(1, 5 * MIB), (2, 5 * MIB), (3, MIB)]
    with pytest.raises(ObjectNotFound):
        storage.info(key)  # not an object until completed
    storage.complete_multipart(key, upload_id, parts)
    assert _read_all(storage, key) == data
    assert storage.list_multipart("") == []
    with pytest.raises(ObjectNotFound):
        storage.list_parts(key, upload_id)


def test_abort_multipart(storage: Storage) -> None:
    upload_id = storage.create_multipart("staging/ab")
    storage.abort_multipart("staging/ab", upload_id)
    storage.abort_multipart("staging/ab", upload_id)  # twice is fine
    assert storage.list_multipart("") == []
    with pytest.raises(ObjectNotFound):
        storage.list_parts("staging/ab", upload_id)


def test_presigned_urls(storage: Storage) -> None:
    storage.put_bytes("exports/x.txt", b"hello")
    get = storage.presigned_get("exports/x.txt", 60, "x.txt", "text/plain", inline=False)
    put = storage.presigned_put("staging/p", 60, 100)
    if isinstance(storage, LocalStorage):
        assert get.startswith("/api/v1/storage/local/") and put.startswith("/api/v1/")
        return
    r = httpx.get(get)
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["content-disposition"].startswith('attachment; filename="x.txt"')
    assert httpx.put(put, content=b"data").status_code == 200
    assert storage.info("staging/p").size == 4


def test_s3_missing_bucket_is_a_clear_permanent_error(moto_s3: MotoS3, tmp_path: Path) -> None:
    storage = make_s3(moto_s3, tmp_path, bucket="no-such-bucket-here")
    with pytest.raises(StorageError) as err:
        storage.put_bytes("uploads/x", b"x")
    assert not isinstance(err.value, StorageUnavailable)
    assert err.value.status_code == 502 and err.value.code == "storage_error"
    assert "NoSuchBucket" in err.value.message


def test_s3_down_is_unavailable_after_retries(tmp_path: Path) -> None:
    moto = start_moto()
    storage = make_s3(moto, tmp_path)
    moto.server.stop()
    source, _ = _file(tmp_path, 100)
    for call in (
        lambda: storage.put_file(source, "uploads/x"),
        lambda: storage.info("uploads/x"),
        lambda: list(storage.list_objects("uploads/")),
        lambda: storage.delete("uploads/x"),
    ):
        with pytest.raises(StorageUnavailable) as err:
            call()
        assert err.value.status_code == 503 and err.value.code == "storage_unavailable"
    assert source.exists()  # a failed put leaves the caller's file alone
