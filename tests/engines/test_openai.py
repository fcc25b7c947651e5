"""The `openai` engine against a local OpenAI-compatible server (tests/engines/servers.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, long_speech, wait_for_job
from tests.engines.conftest import engine_settings
from tests.engines.helpers import service, start, transcription_row, usage_rows
from tests.engines.servers import OpenAIServer
from verbatim.engines.process_pool import EnginePool
from verbatim.engines.splitting import max_part_seconds, plan_cuts

pytestmark = pytest.mark.slow


async def test_openai_transcribes_with_words_segments_and_usage(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, openai_server: OpenAIServer
) -> None:
    settings = engine_settings(tmp_path, database_url, openai=openai_server)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="openai")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        assert t["engine"] == "openai" and t["model_name"] == "whisper-1"
        assert "quick brown fox" in t["text"].lower()
        assert t["language"] == "en"  # the server said "english"
        words = [w for s in t["segments"] for w in s["words"]]
        assert len(words) >= 10 and t["word_count"] == len(words)
        for seg in t["segments"]:
            for w in seg["words"]:
                assert seg["start"] - 0.05 <= w["start"] <= w["end"] <= seg["end"] + 0.05
                assert 0 < w["probability"] <= 1
        # The request was the documented one.
        [fields] = openai_server.fields
        assert fields["model"] == ["whisper-1"]
        assert fields["response_format"] == ["verbose_json"]
        assert sorted(fields["timestamp_granularities[]"]) == ["segment", "word"]
        row = await transcription_row(started["transcription_id"])
        assert row.raw_response["text"] and row.raw_response["words"]
        [event] = await usage_rows()
        assert event.engine == "openai" and event.model == "whisper-1"
        assert event.cost_estimate == pytest.approx(0.006 * event.audio_seconds / 60, abs=1e-6)


async def test_a_file_over_the_limit_is_split_on_silence_and_stitched(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    limit = 400_000  # about 12 s of 16 kHz WAV per part
    path = long_speech(tmp_path / "long.wav", 36)  # speech.wav, speech2.wav, dialogue.wav...
    assert path.stat().st_size > limit
    with OpenAIServer(max_bytes=limit) as server:
        settings = engine_settings(
            tmp_path, database_url, openai=server, openai_max_upload_bytes=limit
        )
        async with service(settings, engine_pool) as alice:
            audio = (await alice.upload(path)).json()
            started = await start(alice, audio["id"], engine="openai")
            job = await wait_for_job(alice, started["job_id"], timeout=120)
            assert job["status"] == "completed", job
            t = (
                await alice.get(
                    f"/api/v1/transcriptions/{started['transcription_id']}",
                    params={"segments_limit": 500},
                )
            ).json()
            row = await transcription_row(started["transcription_id"])
    assert len(server.uploads) >= 3 and max(server.uploads) <= limit
    starts = [s["start"] for s in t["segments"]]
    assert starts == sorted(starts)
    assert abs(t["duration"] - audio["duration"]) < 0.5
    words = [w for s in t["segments"] for w in s["words"]]
    # speech.wav opens the file and comes back after speech2.wav and dialogue.wav with their
    # half-second pauses: its "quick" is exactly that much later the second time, although
    # it was heard in another part.
    quick = [w["start"] for w in words if w["word"].strip(" .,").lower() == "quick"]
    assert len(quick) >= 2, t["text"]
    period = 6.25 + 0.5 + 3.71 + 0.5 + 8.47 + 0.5
    assert quick[1] - quick[0] == pytest.approx(period, abs=0.4)
    offsets = [p["offset"] for p in row.raw_response["parts"]]
    assert offsets[0] == 0.0 and offsets == sorted(offsets) and len(offsets) >= 3


async def test_auth_failure_fails_at_once_and_5xx_is_retried(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, openai_server: OpenAIServer
) -> None:
    settings = engine_settings(
        tmp_path, database_url, openai=openai_server, openai_api_key="sk-wrong"
    )
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="openai")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "failed" and job["error_code"] == "engine_auth_failed", job
        assert job["attempts"] == 1
        assert openai_server.count("POST", "/v1/audio") == 1  # never retried
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        assert t["status"] == "failed" and t["error_code"] == "engine_auth_failed"
        assert await usage_rows() == []

    settings = engine_settings(tmp_path, database_url, openai=openai_server)
    openai_server.requests.clear()
    openai_server.script("transcriptions", 503)
    openai_server.script("transcriptions", 429, retry_after="0")
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engine="openai")
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
        assert job["attempts"] == 1  # recovered inside the HTTP retries
        assert openai_server.count("POST", "/v1/audio") == 3


def test_cuts_fall_in_pauses_and_respect_the_limit() -> None:
    speech = [(0.0, 5.0), (5.6, 11.0), (12.0, 19.0), (19.3, 30.0)]
    cuts = plan_cuts(speech, 30.0, 12.0)
    assert cuts[0] == pytest.approx(11.5)  # the widest pause in the second half of 0..12
    bounds = [0.0, *cuts, 30.0]
    assert all(b - a <= 12.0 for a, b in itertools.pairwise(bounds))
    # No pause at all: hard cuts at the limit.
    assert plan_cuts([(0.0, 30.0)], 30.0, 12.0) == [12.0, 24.0]
    assert plan_cuts(speech, 10.0, 12.0) == []
    assert max_part_seconds(25 * 1000 * 1000) > 700
