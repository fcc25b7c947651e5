"""The `google` engine (Speech-to-Text v1 REST) against a local server that follows Google's
API reference (tests/engines/servers.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, long_speech, wait_for_job
from tests.engines.conftest import engine_settings
from tests.engines.helpers import (
    KILLABLE,
    service,
    start,
    transcription_row,
    usage_rows,
    wait_for,
    workers,
)
from tests.engines.servers import GoogleServer
from verbatim.engines.cloud import parse_job_id
from verbatim.engines.process_pool import EnginePool

pytestmark = pytest.mark.slow


async def test_success_with_word_offsets_confidence_and_usage(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, google_server: GoogleServer
) -> None:
    settings = engine_settings(tmp_path, database_url, google=google_server)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.m4a")).json()
        started = await start(alice, audio["id"], engine="google")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        row = await transcription_row(started["transcription_id"])
    assert t["engine"] == "google" and t["model_name"] == "latest_long"
    assert "quick brown fox" in t["text"].lower() and t["language"] == "en"
    words = [w for s in t["segments"] for w in s["words"]]
    assert len(words) >= 10 and all(0 < w["probability"] <= 1 for w in words)
    assert all(
        s["start"] <= w["start"] <= w["end"] <= s["end"] for s in t["segments"] for w in s["words"]
    )
    [config] = google_server.submitted
    assert config["languageCode"] == "en-US" and config["model"] == "latest_long"
    assert config["enableWordTimeOffsets"] and config["enableWordConfidence"]
    assert "diarizationConfig" not in config
    assert row.provider_job_id is not None and row.provider_job_id.endswith("@1000001")
    assert row.raw_response["operations"][0]["operation"]["done"] is True
    [event] = await usage_rows()
    assert event.engine == "google"
    assert event.cost_estimate == pytest.approx(0.016 * event.audio_seconds / 60, abs=1e-6)


async def test_dialogue_mode_sends_diarization_config_and_maps_speaker_tags(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, google_server: GoogleServer
) -> None:
    settings = engine_settings(tmp_path, database_url, google=google_server)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "dialogue.wav")).json()
        started = await start(alice, audio["id"], engine="google", mode="dialogue", num_speakers=2)
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
    [config] = google_server.submitted
    assert config["diarizationConfig"] == {
        "enableSpeakerDiarization": True,
        "minSpeakerCount": 2,
        "maxSpeakerCount": 2,
    }
    labels = [s["speaker"] for s in t["segments"]]
    assert labels[0] == "SPEAKER_1" and "SPEAKER_2" in labels, labels
    assert {s["label"] for s in t["speakers"]} == {"SPEAKER_1", "SPEAKER_2"}
    assert "meeting notes" in t["text"].lower()


async def test_a_long_file_goes_in_parts_with_their_offsets(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, google_server: GoogleServer
) -> None:
    settings = engine_settings(
        tmp_path, database_url, google=google_server, google_max_inline_bytes=400_000
    )
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(long_speech(tmp_path / "long.wav", 36))).json()
        started = await start(alice, audio["id"], engine="google")
        job = await wait_for_job(alice, started["job_id"], timeout=120)
        assert job["status"] == "completed", job
        t = (
            await alice.get(
                f"/api/v1/transcriptions/{started['transcription_id']}",
                params={"segments_limit": 500},
            )
        ).json()
        row = await transcription_row(started["transcription_id"])
    assert len(google_server.submitted) >= 3
    assert row.provider_job_id is not None and row.provider_job_id.count("@") >= 3
    quick = [w["start"] for s in t["segments"] for w in s["words"] if w["word"].lower() == "quick"]
    assert quick[1] - quick[0] == pytest.approx(6.25 + 0.5 + 3.71 + 0.5 + 8.47 + 0.5, abs=0.4)
    assert abs(t["duration"] - audio["duration"]) < 0.5


async def test_auth_failure_rate_limit_and_5xx_recovery(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, google_server: GoogleServer
) -> None:
    wrong = engine_settings(tmp_path, database_url, google=google_server, google_api_key="bad")
    async with service(wrong, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="google")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "failed" and job["error_code"] == "engine_auth_failed", job
        assert "403" in job["error_message"] and job["attempts"] == 1
    assert not google_server.submitted
    google_server.requests.clear()

    settings = engine_settings(tmp_path, database_url, google=google_server)
    google_server.script("submit", 429, retry_after="0")
    google_server.script("poll", 503, times=3)  # past the HTTP retries: a job retry
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="google")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
    assert job["attempts"] == 2
    assert len(google_server.submitted) == 1  # the retry polled the stored operation
    assert google_server.count("POST", "/v1/speech") == 2  # the 429, then the submission


async def test_cancel_stops_polling(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, google_server: GoogleServer
) -> None:
    settings = engine_settings(tmp_path, database_url, google=google_server)
    google_server.hold.set()
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="google")

        async def polling() -> bool:
            return google_server.count("GET", "/v1/operations/") >= 2

        await wait_for(polling, what="polling")
        r = await alice.post(f"/api/v1/jobs/{started['job_id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        await asyncio.sleep(0.5)
        polls = google_server.count("GET", "/v1/operations/")
        await asyncio.sleep(1.0)
        assert google_server.count("GET", "/v1/operations/") == polls  # stopped
    assert await usage_rows() == []


async def test_a_worker_killed_while_polling_resumes_the_same_operation(
    tmp_path: Path, database_url: str, google_server: GoogleServer
) -> None:
    settings = engine_settings(tmp_path, database_url, google=google_server, **KILLABLE)
    google_server.hold.set()
    env = {
        "VERBATIM_GOOGLE_BASE_URL": google_server.url,
        "VERBATIM_GOOGLE_API_KEY": google_server.key,
    }
    with workers(settings, tmp_path / "workers.log", **env) as pool:
        async with service(settings) as alice:
            audio = (await alice.upload(long_speech(tmp_path / "long.wav", 20))).json()
            started = await start(alice, audio["id"], engine="google")
            first = pool.spawn()

            async def stored() -> bool:
                row = await transcription_row(started["transcription_id"])
                return row.provider_job_id is not None and (
                    google_server.count("GET", "/v1/operations/") >= 2
                )

            await wait_for(stored, timeout=90, what="a stored operation being polled")
            pool.kill(first)
            job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
            assert job["status"] == "running" and job["attempts"] == 1, job
            polls_before = google_server.count("GET", "/v1/operations/")

            pool.spawn()
            google_server.hold.clear()
            job = await wait_for_job(alice, started["job_id"], timeout=120)
            assert job["status"] == "completed", (job, pool.log.read_text()[-3000:])
            assert job["attempts"] == 2
            t = (
                await alice.get(
                    f"/api/v1/transcriptions/{started['transcription_id']}",
                    params={"segments_limit": 500},
                )
            ).json()
        row = await transcription_row(started["transcription_id"])
    # One operation, submitted once, polled again by the second worker.
    [(offset, duration, name)] = parse_job_id(row.provider_job_id or "")
    assert list(google_server.operations) == [name] and offset == 0.0
    assert duration == pytest.approx(audio["duration"], abs=0.5)
    assert len(google_server.submitted) == 1
    assert google_server.count("POST", "/v1/speech") == 1
    assert google_server.count("GET", "/v1/operations/") > polls_before
    assert "engine_job_resumed" in pool.log.read_text()
    # The transcript is the whole file: its last word ends near the end of the audio.
    assert "lazy dog" in t["text"].lower() and "meeting notes" in t["text"].lower()
    last_end = max(w["end"] for s in t["segments"] for w in s["words"])
    assert last_end > audio["duration"] - 3.0
    assert len(await usage_rows()) == 1
