"""Engines behind one name, refused up front when not configured; usage and cost per run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ApiUser, make_settings, register, wait_for_job
from tests.engines.helpers import row_counts, service, start, usage_rows
from tests.engines.servers import AssemblyAIServer
from verbatim.config import Settings
from verbatim.engines.process_pool import EnginePool
from verbatim.engines.registry import price_per_minute


async def test_engines_lists_availability_models_and_prices(alice: ApiUser) -> None:
    r = await alice.get("/api/v1/engines")
    assert r.status_code == 200, r.text
    engines = {e["name"]: e for e in r.json()["items"]}
    assert set(engines) == {"faster-whisper", "openai", "assemblyai", "google", "yandex"}
    local = engines["faster-whisper"]
    assert local["available"] is True and local["kind"] == "local" and local["dialogue"] is True
    assert "tiny.en" in [m["name"] for m in local["models"]]
    assert local["default_model"] == "tiny.en" and local["price_per_minute"] == 0.0
    # Configured against the local servers by tests/engines/conftest.py.
    assert engines["openai"]["available"] is True
    assert engines["openai"]["dialogue"] is False
    # SpeechKit labels at most two speakers; the others document no limit.
    assert engines["yandex"]["max_speakers"] == 2 and local["max_speakers"] is None
    assert engines["assemblyai"]["max_speakers"] is None
    assert engines["openai"]["price_per_minute"] == 0.006
    assert engines["assemblyai"]["available"] is True
    assert next(m["name"] for m in engines["assemblyai"]["models"]) == "universal"


async def test_engines_needs_authentication(app_client: object) -> None:
    import httpx

    assert isinstance(app_client, httpx.AsyncClient)
    r = await app_client.get("/api/v1/engines")
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    r = await app_client.get("/api/v1/usage")
    assert r.status_code == 401


async def test_an_unconfigured_engine_is_unavailable_and_refused_up_front(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    settings = make_settings(tmp_path, database_url)  # no cloud credentials at all
    async with service(settings, engine_pool) as alice:
        engines = {e["name"]: e for e in (await alice.get("/api/v1/engines")).json()["items"]}
        assert engines["assemblyai"]["available"] is False
        assert "VERBATIM_ASSEMBLYAI_API_KEY" in engines["assemblyai"]["reason"]
        assert engines["openai"]["available"] is False
        assert engines["google"]["available"] is False
        assert engines["yandex"]["available"] is False
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        before = await row_counts()
        for engine in ("assemblyai", "openai", "google", "yandex"):
            r = await alice.post(
                f"/api/v1/audio/{audio['id']}/transcriptions", json={"engine": engine}
            )
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert error["code"] == "engine_unavailable"
            assert error["details"]["engine"] == engine and error["details"]["reason"]
        r = await alice.post(
            f"/api/v1/audio/{audio['id']}/transcriptions", json={"engine": "no-such-engine"}
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "engine_unavailable"
        assert "faster-whisper" in r.json()["error"]["details"]["supported"]
        assert await row_counts() == before  # nothing stored


async def test_bad_engine_requests_get_a_clear_422_and_store_nothing(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    before = await row_counts()
    url = f"/api/v1/audio/{audio['id']}/transcriptions"
    cases = [
        ({"engine": "openai", "mode": "dialogue"}, "mode_unsupported"),
        (
            {"engine": "assemblyai", "mode": "dialogue", "diarization": "channels"},
            "diarization_unsupported",
        ),
        ({"engine": "openai", "model": "../../etc/passwd"}, "model_unavailable"),
        ({"engine": "faster-whisper", "model": "not-installed-model"}, "model_unavailable"),
        ({"engine": "x" * 51}, "validation_error"),
    ]
    for body, code in cases:
        r = await alice.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == code, (body, r.text)
    assert await row_counts() == before


async def test_another_users_audio_is_404_for_every_engine(alice: ApiUser, bob: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    for engine in ("faster-whisper", "openai", "assemblyai", "google", "yandex"):
        r = await bob.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={"engine": engine})
        assert r.status_code == 404, r.text
    assert (await row_counts())["transcription"] == 0


def test_prices_are_per_engine_or_per_model(tmp_path: Path) -> None:
    settings = Settings(
        env="test",
        data_dir=tmp_path,
        engine_prices={"openai": 0.01, "openai/gpt-4o-mini-transcribe": 0.003},
    )
    assert price_per_minute(settings, "openai", "whisper-1") == 0.01
    assert price_per_minute(settings, "openai", "gpt-4o-mini-transcribe") == 0.003
    assert price_per_minute(settings, "assemblyai", "universal") == 0.0025  # the default
    assert price_per_minute(settings, "faster-whisper", "tiny.en") == 0.0


@pytest.mark.slow
async def test_a_local_run_records_usage_and_the_caller_sees_their_totals(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    # A price for local runs (the deployment's own cost of a machine minute).
    settings = make_settings(tmp_path, database_url, engine_prices={"faster-whisper": 0.012})
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"])
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        [event] = await usage_rows()
        assert str(event.transcription_id) == started["transcription_id"]
        assert str(event.job_id) == started["job_id"]
        assert event.engine == "faster-whisper" and event.model == "tiny.en"
        assert abs(event.audio_seconds - audio["duration"]) < 0.1
        assert 0 < event.processing_seconds < 60
        assert event.price_per_minute == 0.012
        assert event.cost_estimate == pytest.approx(0.012 * event.audio_seconds / 60, abs=1e-6)

        for group_by, key in (("engine", "faster-whisper"), ("model", "faster-whisper/tiny.en")):
            r = await alice.get("/api/v1/usage", params={"group_by": group_by})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["currency"] == "USD" and body["group_by"] == group_by
            assert body["total"]["runs"] == 1
            assert body["total"]["cost_estimate"] == pytest.approx(event.cost_estimate)
            [group] = body["groups"]
            assert group["key"] == key and group["runs"] == 1
            assert group["audio_seconds"] == pytest.approx(event.audio_seconds)
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        body = (await alice.get("/api/v1/usage", params={"group_by": "day"})).json()
        assert [g["key"] for g in body["groups"]] == [today]
        # A period that ends before the run holds nothing.
        past = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        body = (await alice.get("/api/v1/usage", params={"to": past})).json()
        assert body["total"]["runs"] == 0 and body["groups"] == []

        # Another user sees none of it.
        bob = await register(alice.client, "bob@example.com")
        body = (await bob.get("/api/v1/usage", params={"group_by": "engine"})).json()
        assert body["total"]["runs"] == 0 and body["groups"] == []


async def test_usage_bad_inputs_get_a_clear_422(alice: ApiUser) -> None:
    cases = [
        ({"group_by": "week"}, "validation_error"),
        ({"from": "yesterday"}, "validation_error"),
        ({"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "usage_range_invalid"),
        ({"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "usage_range_invalid"),
    ]
    for params, code in cases:
        r = await alice.get("/api/v1/usage", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == code, (params, r.text)
    r = await alice.get("/api/v1/usage", params={"from": "2026-11-01", "to": "2026-12-01"})
    assert r.status_code == 200, r.text
    assert r.json()["from"].startswith("2026-11-01T00:00:00")


async def test_cloud_transcriptions_go_to_their_own_queue(
    tmp_path: Path, database_url: str, assemblyai_server: AssemblyAIServer
) -> None:
    from sqlalchemy import text

    from tests.engines.conftest import engine_settings
    from tests.engines.helpers import _session

    # No worker: the queued jobs stay where they were put.
    settings = engine_settings(
        tmp_path, database_url, assemblyai=assemblyai_server, run_worker_in_api=False
    )
    async with service(settings) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        cloud = await start(alice, audio["id"], engine="assemblyai")
        local = await start(alice, audio["id"])
        queues = {}
        async with _session() as session:
            for name, started in (("cloud", cloud), ("local", local)):
                queues[name] = await session.scalar(
                    text(
                        "SELECT q.queue_name FROM procrastinate_jobs q JOIN job j"
                        " ON j.queue_job_id = q.id WHERE j.id = :id"
                    ),
                    {"id": started["job_id"]},
                )
    assert queues == {"cloud": "transcription_cloud", "local": "transcription"}
