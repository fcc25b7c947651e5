"""Provider calls (engines/http.py) against the local AssemblyAI server: timeouts, retries with
backoff honouring Retry-After, and the stable error codes."""

from __future__ import annotations

import socket
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from tests.engines.servers import AssemblyAIServer
from verbatim.config import Settings
from verbatim.engines.base import EngineError
from verbatim.engines.http import ProviderClient


def client(tmp_path: Path, url: str, key: str, **overrides: object) -> tuple[ProviderClient, list]:
    values: dict[str, object] = {
        "env": "test",
        "data_dir": tmp_path,
        "engine_max_retries": 2,
        "engine_retry_base_s": 0.01,
        "engine_retry_max_s": 10.0,
        "engine_http_timeout_s": 5.0,
    }
    values.update(overrides)
    http = ProviderClient(Settings(**values), "assemblyai", url, {"Authorization": key})  # type: ignore[arg-type]
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    http.sleep = record  # type: ignore[assignment]
    return http, waits


async def upload(http: ProviderClient) -> str:
    r = await http.request(
        "POST", "/v2/upload", content=b"RIFF", headers={"Content-Type": "application/octet-stream"}
    )
    return str(r.json()["upload_url"])


async def test_retry_after_seconds_and_dates_are_honoured_and_capped(
    tmp_path: Path, assemblyai_server: AssemblyAIServer
) -> None:
    http, waits = client(tmp_path, assemblyai_server.url, assemblyai_server.key)
    assemblyai_server.script("upload", 429, retry_after="7")
    assemblyai_server.script("upload", 503, retry_after=formatdate(time.time() + 4, usegmt=True))
    assert (await upload(http)).startswith("https://cdn.assemblyai.com/upload/")
    assert waits[0] == 7.0 and 2.0 <= waits[1] <= 4.0
    capped, capped_waits = client(
        tmp_path, assemblyai_server.url, assemblyai_server.key, engine_retry_max_s=1.5
    )
    assemblyai_server.script("upload", 429, retry_after="120")
    await upload(capped)
    assert capped_waits == [1.5]
    # Without Retry-After: exponential backoff with jitter.
    backoff, backoff_waits = client(tmp_path, assemblyai_server.url, assemblyai_server.key)
    assemblyai_server.script("upload", 502, times=2)
    await upload(backoff)
    assert 0.005 <= backoff_waits[0] <= 0.01 and 0.01 <= backoff_waits[1] <= 0.02
    for c in (http, capped, backoff):
        await c.aclose()


async def test_errors_map_to_stable_codes(
    tmp_path: Path, assemblyai_server: AssemblyAIServer
) -> None:
    http, waits = client(tmp_path, assemblyai_server.url, assemblyai_server.key)
    assemblyai_server.script("upload", 503, times=3)
    with pytest.raises(EngineError) as caught:
        await upload(http)
    assert caught.value.code == "engine_server_error" and caught.value.transient
    assert assemblyai_server.count("POST", "/v2/upload") == 3 and len(waits) == 2

    assemblyai_server.script("upload", 429, times=3, retry_after="0")
    with pytest.raises(EngineError) as caught:
        await upload(http)
    assert caught.value.code == "engine_rate_limited" and caught.value.transient

    with pytest.raises(EngineError) as caught:
        await http.request("POST", "/v2/upload", content=b"")  # no octet-stream body
    assert caught.value.code == "engine_rejected" and not caught.value.transient
    assert "Upload raw audio bytes" in caught.value.message

    wrong, wrong_waits = client(tmp_path, assemblyai_server.url, "wrong-key")
    before = assemblyai_server.count("POST", "/v2/upload")
    with pytest.raises(EngineError) as caught:
        await upload(wrong)
    assert caught.value.code == "engine_auth_failed" and not caught.value.transient
    assert "Authentication error" in caught.value.message
    assert assemblyai_server.count("POST", "/v2/upload") == before + 1 and wrong_waits == []
    await http.aclose()
    await wrong.aclose()


async def test_timeouts_and_refused_connections_are_transient(tmp_path: Path) -> None:
    # A listener that accepts and never answers: the read timeout fires.
    with socket.socket() as silent, socket.socket() as closed:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        http, waits = client(
            tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}", "k", engine_http_timeout_s=0.3
        )
        started = time.monotonic()
        with pytest.raises(EngineError) as caught:
            await http.request("GET", "/v2/transcript/x")
        assert caught.value.code == "engine_unreachable" and caught.value.transient
        assert "Timeout" in caught.value.message and len(waits) == 2
        assert time.monotonic() - started < 5
        refused, _ = client(tmp_path, f"http://127.0.0.1:{closed.getsockname()[1]}", "k")
        with pytest.raises(EngineError) as caught:
            await refused.request("GET", "/v2/transcript/x")
        assert caught.value.code == "engine_unreachable" and "ConnectError" in caught.value.message
        await http.aclose()
        await refused.aclose()
