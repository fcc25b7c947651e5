"""Local presigned tokens are credentials: they never reach a log line."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import structlog

from tests.conftest import FIXTURES, ApiUser
from tests.uploads.test_direct_upload import create, put
from verbatim.logs import REDACTED, RedactTokens, configure_logging, redact_path

TOKEN = "eyJrZXkiOiJzdGFnaW5nL3gifQ.c2lnbmF0dXJl"


def test_redact_path() -> None:
    assert redact_path(f"/api/v1/storage/local/{TOKEN}") == f"/api/v1/storage/local/{REDACTED}"
    assert redact_path(f"PUT /api/v1/storage/local/{TOKEN}?x=1 HTTP/1.1") == (
        f"PUT /api/v1/storage/local/{REDACTED}?x=1 HTTP/1.1"
    )
    assert redact_path("/api/v1/audio/123") == "/api/v1/audio/123"


def test_uvicorn_access_line_is_redacted() -> None:
    """The exact call uvicorn's access logger makes, through a plain handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.uvicorn.access")
    logger.addFilter(RedactTokens())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "PUT",
        f"/api/v1/storage/local/{TOKEN}",
        "1.1",
        200,
    )
    line = stream.getvalue()
    assert TOKEN not in line and f"/api/v1/storage/local/{REDACTED}" in line


def test_configure_logging_installs_the_access_filter() -> None:
    configure_logging("INFO", json=True)
    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("uvicorn.access").filters)


async def test_no_token_in_request_logs(
    alice: ApiUser, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Our own request log (path=...) and uvicorn's access log, at INFO, after real PUTs."""
    caplog.set_level(logging.INFO)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    data = (FIXTURES / "speech.wav").read_bytes()
    upload = await create(alice, "a.wav", len(data))
    token = upload["url"].rsplit("/", 1)[1]
    assert (await put(alice, upload["url"], data)).status_code == 200
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "PUT", upload["url"], "1.1", 200
    )
    structlog.get_logger("verbatim.http").info("request", path=f"/api/v1/storage/local/{token}")
    # The server's lines (the test's own httpx client logs its requests too: not the server).
    logged = "\n".join(
        f"{r.getMessage()} {r.msg}" for r in caplog.records if not r.name.startswith("httpx")
    )
    assert "/api/v1/storage/local/" in logged
    assert token not in logged
