"""The `assemblyai` engine against a local server that follows AssemblyAI's REST API
(tests/engines/servers.py): success, dialogue labels, auth failure, rate limits, server
errors, cancel, and a worker restart that resumes polling without a second submission."""

from __future__ import annotations

import asyncio
import uuid
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
from tests.engines.servers import AssemblyAIServer
from verbatim.engines.process_pool import EnginePool

pytestmark = pytest.mark.slow


async def test_success_maps_words_confidence_language_and_keeps_the_raw_answer(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, assemblyai_server: AssemblyAIServer
) -> None:
    settings = engine_settings(tmp_path, database_url, assemblyai=assemblyai_server)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="assemblyai")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
    assert t["engine"] == "assemblyai" and t["model_name"] == "universal"
    assert "quick brown fox" in t["text"].lower() and t["language"] == "en"
    assert t["speakers"] == [] and all(s["speaker"] is None for s in t["segments"])
    words = [w for s in t["segments"] for w in s["words"]]
    assert len(words) >= 10 and 0 < t["avg_confidence"] <= 1
    assert all(0 < w["probability"] <= 1 and w["start"] <= w["end"] for w in words)
    assert t["duration"] == pytest.approx(6.0, abs=1.0)  # audio_duration, whole seconds
    [submitted] = assemblyai_server.submitted
    assert submitted["language_detection"] is True and "speaker_labels" not in submitted
    assert submitted["speech_model"] == "universal"
    assert assemblyai_server.count("POST", "/v2/upload") == 1
    assert assemblyai_server.count("GET", "/v2/transcript/") >= 3  # queued, processing, done
    row = await transcription_row(started["transcription_id"])
    assert row.provider_job_id == row.raw_response["id"]
    assert row.raw_response["status"] == "completed" and row.raw_response["words"]
    assert job["detail"]["provider_job_id"] == row.provider_job_id
    [event] = await usage_rows()
    assert event.engine == "assemblyai" and event.model == "universal"
    assert event.cost_estimate == pytest.approx(0.0025 * event.audio_seconds / 60, abs=1e-6)


async def test_dialogue_mode_asks_for_speaker_labels_and_maps_them(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, assemblyai_server: AssemblyAIServer
) -> None:
    settings = engine_settings(tmp_path, database_url, assemblyai=assemblyai_server)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "dialogue.wav")).json()
        started = await start(
            alice,
            audio["id"],
            engine="assemblyai",
            mode="dialogue",
            language="en",
            min_speakers=2,
            max_speakers=3,
        )
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
    [submitted] = assemblyai_server.submitted
    assert submitted["speaker_labels"] is True and submitted["language_code"] == "en"
    assert submitted["speaker_options"] == {"min_speakers_expected": 2, "max_speakers_expected": 3}
    assert "language_detection" not in submitted
    labels = [s["speaker"] for s in t["segments"]]
    assert labels[:2] == ["SPEAKER_1", "SPEAKER_2"], labels  # A, B in order of appearance
    assert {s["label"] for s in t["speakers"]} == {"SPEAKER_1", "SPEAKER_2"}
    assert all(s["talk_time"] > 0 and s["word_count"] > 0 for s in t["speakers"])
    assert t["quality"]["diarization"]["method"] == "provider"


async def test_a_refused_key_fails_at_once_with_engine_auth_failed(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, assemblyai_server: AssemblyAIServer
) -> None:
    settings = engine_settings(
        tmp_path, database_url, assemblyai=assemblyai_server, assemblyai_api_key="wrong"
    )
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="assemblyai")
        job = await wait_for_job(alice, started["job_id"])
    assert job["status"] == "failed" and job["error_code"] == "engine_auth_failed", job
    assert "401" in job["error_message"] and job["attempts"] == 1
    assert assemblyai_server.count("POST", "/v2/upload") == 1 and not assemblyai_server.submitted
    assert await usage_rows() == []


async def test_rate_limits_are_waited_out_honouring_retry_after(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, assemblyai_server: AssemblyAIServer
) -> None:
    settings = engine_settings(
        tmp_path, database_url, assemblyai=assemblyai_server, engine_retry_max_s=5.0
    )
    assemblyai_server.script("submit", 429, retry_after="1")
    assemblyai_server.script("poll", 429, times=2, retry_after="0")
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        loop = asyncio.get_running_loop()
        began = loop.time()
        started = await start(alice, audio["id"], engine="assemblyai")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        assert loop.time() - began >= 1.0  # the submit waited the second it was told
    assert job["attempts"] == 1
    assert len(assemblyai_server.submitted) == 1
    assert assemblyai_server.count("POST", "/v2/transcript") == 2  # the 429, then the submit


async def test_server_errors_past_the_retries_resume_the_same_provider_job(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, assemblyai_server: AssemblyAIServer
) -> None:
    settings = engine_settings(tmp_path, database_url, assemblyai=assemblyai_server)
    # Three 503s exhaust the HTTP retries (engine_max_retries=2): the job is retried later.
    assemblyai_server.script("poll", 503, times=3)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="assemblyai")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
    assert job["attempts"] == 2
    assert "quick brown fox" in t["text"].lower()
    # The second attempt polled the stored transcript: one upload, one submission.
    assert assemblyai_server.count("POST", "/v2/upload") == 1
    assert len(assemblyai_server.submitted) == 1
    assert len(await usage_rows()) == 1


async def test_cancel_deletes_the_transcript_at_the_provider(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, assemblyai_server: AssemblyAIServer
) -> None:
    settings = engine_settings(tmp_path, database_url, assemblyai=assemblyai_server)
    assemblyai_server.hold.set()
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="assemblyai")

        async def polling() -> bool:
            return assemblyai_server.count("GET", "/v2/transcript/") >= 2

        await wait_for(polling, what="polling")
        r = await alice.post(f"/api/v1/jobs/{started['job_id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text

        async def deleted() -> bool:
            return bool(assemblyai_server.deleted)

        await wait_for(deleted, what="the provider's delete")
        [transcript_id] = list(assemblyai_server.transcripts)
        assert assemblyai_server.deleted == [transcript_id]
        job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
        assert job["status"] == "cancelled"
    assert await usage_rows() == []


async def test_a_worker_killed_while_polling_resumes_without_a_second_submission(
    tmp_path: Path, database_url: str, assemblyai_server: AssemblyAIServer
) -> None:
    settings = engine_settings(tmp_path, database_url, assemblyai=assemblyai_server, **KILLABLE)
    assemblyai_server.hold.set()
    env = {
        "VERBATIM_ASSEMBLYAI_BASE_URL": assemblyai_server.url,
        "VERBATIM_ASSEMBLYAI_API_KEY": assemblyai_server.key,
    }
    with workers(settings, tmp_path / "workers.log", **env) as pool:
        async with service(settings) as alice:
            audio = (await alice.upload(long_speech(tmp_path / "long.wav", 20))).json()
            started = await start(alice, audio["id"], engine="assemblyai")
            first = pool.spawn()

            async def stored() -> bool:
                row = await transcription_row(started["transcription_id"])
                return row.provider_job_id is not None and (
                    assemblyai_server.count("GET", "/v2/transcript/") >= 2
                )

            await wait_for(stored, timeout=90, what="a stored provider job being polled")
            pool.kill(first)
            job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
            assert job["status"] == "running" and job["attempts"] == 1, job

            pool.spawn()
            assemblyai_server.hold.clear()
            job = await wait_for_job(alice, started["job_id"], timeout=120)
            assert job["status"] == "completed", (job, pool.log.read_text()[-3000:])
            assert job["attempts"] == 2
            t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
            assert "lazy dog" in t["text"].lower()
        row = await transcription_row(started["transcription_id"])
        assert uuid.UUID(row.provider_job_id or "")
        assert len(assemblyai_server.submitted) == 1  # paid once
        assert assemblyai_server.count("POST", "/v2/upload") == 1
        assert "engine_job_resumed" in pool.log.read_text()
