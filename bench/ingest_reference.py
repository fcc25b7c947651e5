"""The ingest benchmark's reference: the least a server can do with an upload.

A bare ASGI app (no framework, no multipart, no database) served by uvicorn: a POST's raw body
is written to a new file in $BENCH_UPLOAD_DIR while it is hashed with SHA-256, then the hex
digest and size are returned as JSON. Any GET answers 200 (the readiness check). Measured with
the same client and file as `POST /api/v1/audio`, it gives the throughput that the machine,
uvicorn and Python allow, which the service's streaming ingest is compared with.

    BENCH_UPLOAD_DIR=/tmp/x uvicorn bench.ingest_reference:app --port 8001
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from starlette.types import Receive, Scope, Send

UPLOAD_DIR = Path(os.environ.get("BENCH_UPLOAD_DIR", tempfile.gettempdir()))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http":
        if scope["method"] == "POST":
            await _store(receive, send)
        else:
            await _respond(send, 200, {"status": "ok"})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _store(receive: Receive, send: Send) -> None:
    """Stream the body to disk and hash it, chunk by chunk as uvicorn delivers it."""
    digest = hashlib.sha256()
    size = 0
    path = UPLOAD_DIR / f"upload-{uuid.uuid4().hex}.bin"
    with path.open("xb") as target:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                target.close()
                path.unlink(missing_ok=True)
                return
            chunk = message.get("body", b"")
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
    await _respond(send, 200, {"sha256": digest.hexdigest(), "size": size, "path": str(path)})


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
