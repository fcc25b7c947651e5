"""The `yandex` engine (SpeechKit async recognition, REST API v3) against a local server that
follows Yandex Cloud's API reference (tests/engines/servers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES, wait_for_job
from tests.engines.conftest import engine_settings
from tests.engines.helpers import service, start, transcription_row, usage_rows, wait_for
from tests.engines.servers import YandexServer
from verbatim.engines.process_pool import EnginePool

pytestmark = pytest.mark.slow


async def test_success_dialogue_labels_and_usage(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, yandex_server: YandexServer
) -> None:
    settings = engine_settings(tmp_path, database_url, yandex=yandex_server)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="yandex", language="en")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        dialogue = (await alice.upload(FIXTURES / "dialogue.wav")).json()
        started2 = await start(alice, dialogue["id"], engine="yandex", mode="dialogue")
        job2 = await wait_for_job(alice, started2["job_id"])
        assert job2["status"] == "completed", job2
        d = (await alice.get(f"/api/v1/transcriptions/{started2['transcription_id']}")).json()
        row = await transcription_row(started["transcription_id"])
    assert t["engine"] == "yandex" and t["model_name"] == "general"
    assert "quick brown fox" in t["text"].lower() and t["language"] == "en"
    words = [w for s in t["segments"] for w in s["words"]]
    assert len(words) >= 10 and all(0 < w["probability"] <= 1 for w in words)
    first, second = yandex_server.submitted
    assert first["recognitionModel"]["languageRestriction"]["languageCode"] == ["en-US"]
    assert "speakerLabeling" not in first
    assert second["speakerLabeling"] == {"speakerLabeling": "SPEAKER_LABELING_ENABLED"}
    assert [s["speaker"] for s in d["segments"]][:2] == ["SPEAKER_1", "SPEAKER_2"]
    assert {s["label"] for s in d["speakers"]} == {"SPEAKER_1", "SPEAKER_2"}
    assert row.raw_response["operations"][0]["results"][0]["final"]["alternatives"]
    events = await usage_rows()
    assert [e.engine for e in events] == ["yandex", "yandex"]


async def test_auth_failure_rate_limit_resume_and_cancel(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, yandex_server: YandexServer
) -> None:
    wrong = engine_settings(tmp_path, database_url, yandex=yandex_server, yandex_api_key="bad")
    async with service(wrong, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        job = await wait_for_job(
            alice, (await start(alice, audio["id"], engine="yandex"))["job_id"]
        )
        assert job["status"] == "failed" and job["error_code"] == "engine_auth_failed", job
    assert not yandex_server.submitted

    settings = engine_settings(tmp_path, database_url, yandex=yandex_server)
    yandex_server.script("submit", 429, retry_after="0")
    yandex_server.script("poll", 503, times=3)  # past the HTTP retries: a job retry
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="yandex")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        assert job["attempts"] == 2 and len(yandex_server.submitted) == 1

        yandex_server.hold.set()
        started = await start(alice, audio["id"], engine="yandex")

        async def polling() -> bool:
            return (
                len(yandex_server.submitted) == 2
                and yandex_server.count("GET", "/operations/") >= 6
            )

        await wait_for(polling, what="polling")
        r = await alice.post(f"/api/v1/jobs/{started['job_id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"

        async def deleted() -> bool:
            return bool(yandex_server.deleted)

        await wait_for(deleted, what="deleteRecognition")
        assert yandex_server.deleted == [list(yandex_server.operations)[-1]]
    assert len(await usage_rows()) == 1
