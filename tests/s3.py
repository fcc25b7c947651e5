"""A real S3 protocol server for tests: moto's threaded server on loopback, a bucket per test.

moto serves S3 over HTTP (boto3 and httpx talk to it as to AWS) but does not check presigned
signatures or their expiry: those are tested on the local backend, which does.
Also here: a TCP proxy that can cut the connection mid-transfer (an outage mid-upload), and
helpers that look at what a backend really stored.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from verbatim.config import Settings

if TYPE_CHECKING:
    from tests.conftest import ApiUser


def s3_client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@dataclass
class MotoS3:
    server: ThreadedMotoServer
    endpoint_url: str
    port: int

    @property
    def client(self) -> Any:
        return s3_client(self.endpoint_url)

    def new_bucket(self) -> str:
        name = f"verbatim-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name


def start_moto(port: int = 0) -> MotoS3:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return MotoS3(server, f"http://{host}:{bound}", bound)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    moto = start_moto()
    yield moto
    moto.server.stop()


def make_s3_settings(
    tmp_path: Path,
    database_url: str,
    endpoint_url: str,
    bucket: str,
    **overrides: Any,
) -> Settings:
    from tests.conftest import make_settings

    values: dict[str, Any] = {
        "storage": "s3",
        "s3_endpoint_url": endpoint_url,
        "s3_bucket": bucket,
        "s3_region": "us-east-1",
        "s3_access_key_id": "test",
        "s3_secret_access_key": "test",
        "s3_addressing_style": "path",
        "s3_max_attempts": 2,  # an outage is reported within a second or two
        **overrides,
    }
    return make_settings(tmp_path, database_url, **values)


def backend_settings(
    backend: str, tmp_path: Path, database_url: str, moto: MotoS3 | None, **overrides: Any
) -> Settings:
    """Settings for the "local" or "s3" backend (a fresh bucket)."""
    from tests.conftest import make_settings

    if backend == "s3":
        assert moto is not None
        bucket = moto.new_bucket()
        return make_s3_settings(tmp_path, database_url, moto.endpoint_url, bucket, **overrides)
    return make_settings(tmp_path, database_url, **overrides)


def object_keys(settings: Settings, prefix: str = "") -> list[str]:
    """Every object key the backend holds under prefix (never the local backend's own
    `.incoming`/`.multipart` bookkeeping, which `leftovers` covers)."""
    if settings.storage == "s3":
        client = s3_client(str(settings.s3_endpoint_url))
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=settings.s3_bucket, Prefix=prefix
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(k for k in keys if not k.startswith("health/"))
    root = settings.media_dir
    if not root.exists():
        return []
    keys = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(k for k in keys if k.startswith(prefix))


def read_object(settings: Settings, key: str) -> bytes:
    if settings.storage == "s3":
        client = s3_client(str(settings.s3_endpoint_url))
        data: bytes = client.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read()
        return data
    return (settings.media_dir / key).read_bytes()


def put_object(settings: Settings, key: str, data: bytes) -> None:
    """Plant an object behind the service's back."""
    if settings.storage == "s3":
        s3_client(str(settings.s3_endpoint_url)).put_object(
            Bucket=settings.s3_bucket, Key=key, Body=data
        )
    else:
        path = settings.media_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def delete_object(settings: Settings, key: str) -> None:
    if settings.storage == "s3":
        s3_client(str(settings.s3_endpoint_url)).delete_object(Bucket=settings.s3_bucket, Key=key)
    else:
        (settings.media_dir / key).unlink()


def pending_multipart(settings: Settings) -> list[str]:
    """Unfinished multipart uploads (invisible, but they hold bytes)."""
    if settings.storage == "s3":
        client = s3_client(str(settings.s3_endpoint_url))
        uploads = client.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", [])
        return sorted(u["Key"] for u in uploads)
    root = settings.media_dir / ".multipart"
    return sorted((d / "key").read_text() for d in root.iterdir()) if root.exists() else []


def leftovers(settings: Settings) -> list[Path]:
    """Temporary files anywhere: the data dir's tmp/ and the local backend's .incoming/."""
    found = list(settings.tmp_dir.glob("*")) if settings.tmp_dir.exists() else []
    incoming = settings.media_dir / ".incoming"
    return found + (list(incoming.glob("*")) if incoming.exists() else [])


def mirror_media(settings: Settings) -> list[Path]:
    """The stored media as local files under settings.media_dir, whatever the backend, so
    tests written for the local backend read S3 the same way."""
    if settings.storage != "s3":
        root = settings.media_dir
        if not root.exists():
            return []
        return [
            p
            for p in root.rglob("*")
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)
        ]
    paths = []
    for key in object_keys(settings):
        path = settings.media_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(read_object(settings, key))
        paths.append(path)
    return paths


async def fetch(user: ApiUser, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET through the API, following a redirect to storage over the network like a browser
    (the presigned URL needs no API credentials). The redirect is `response.history[0]`."""
    first = await user.get(url, headers=headers or {})
    if first.status_code not in (302, 307):
        return first
    async with httpx.AsyncClient(timeout=30) as real:
        followed = await real.get(first.headers["location"], headers=headers or {})
    followed.history = [first]
    return followed


class CuttableProxy:
    """A loopback TCP proxy to `target` that drops every connection, and refuses new ones,
    once `cut_after` bytes went upstream: storage going away in the middle of a transfer."""

    def __init__(self, target_port: int, cut_after: int | None = None) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.sent = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if upstream:
                    with self._lock:
                        self.sent += len(data)
                        over = self.cut_after is not None and self.sent > self.cut_after
                    if over:
                        self.cut()
                        return
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
