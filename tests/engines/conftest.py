from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.engines.servers import AssemblyAIServer, GoogleServer, OpenAIServer, YandexServer
from verbatim.config import Settings


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def google_server() -> Iterator[GoogleServer]:
    with GoogleServer() as server:
        yield server


@pytest.fixture
def yandex_server() -> Iterator[YandexServer]:
    with YandexServer() as server:
        yield server


@pytest.fixture
def assemblyai_server() -> Iterator[AssemblyAIServer]:
    with AssemblyAIServer() as server:
        yield server


def engine_settings(
    tmp_path: Path,
    database_url: str,
    openai: OpenAIServer | None = None,
    assemblyai: AssemblyAIServer | None = None,
    google: GoogleServer | None = None,
    yandex: YandexServer | None = None,
    **overrides: object,
) -> Settings:
    values: dict[str, object] = {
        # Fast retries and polls: the protocol is the same, the waits are shorter.
        "engine_retry_base_s": 0.01,
        "engine_retry_max_s": 0.2,
        "engine_max_retries": 2,
        "engine_poll_interval_s": 0.05,
        "engine_http_timeout_s": 30.0,
        "job_retry_base_s": 0.05,
        "job_retry_max_s": 0.1,
        "worker_poll_s": 0.2,
    }
    if openai is not None:
        values.update(openai_base_url=openai.url + "/v1", openai_api_key=openai.key)
    if assemblyai is not None:
        values.update(assemblyai_base_url=assemblyai.url, assemblyai_api_key=assemblyai.key)
    if google is not None:
        values.update(google_base_url=google.url, google_api_key=google.key)
    if yandex is not None:
        values.update(
            yandex_base_url=yandex.url, yandex_operation_url=yandex.url, yandex_api_key=yandex.key
        )
    values.update(overrides)
    return make_settings(tmp_path, database_url, **values)


@pytest.fixture
def settings(
    tmp_path: Path,
    database_url: str,
    openai_server: OpenAIServer,
    assemblyai_server: AssemblyAIServer,
    google_server: GoogleServer,
) -> Settings:
    """Every engine configured against its local server."""
    return engine_settings(tmp_path, database_url, openai_server, assemblyai_server, google_server)
