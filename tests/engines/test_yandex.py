"""The `yandex` engine (SpeechKit async recognition, REST API v3) against a local server that
follows Yandex Cloud's API reference (tests/engines/servers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, long_speech, wait_for_job
from tests.engines.conftest import engine_settings
from tests.engines.helpers import (
    KILLABLE,
    row_counts,
    service,
    start,
    transcription_row,
    usage_rows,
    wait_for,
    workers,
)
from tests.engines.servers import YandexServer
from verbatim.engines.base import DialogueOptions, TranscribeOptions
from verbatim.engines.cloud import CloudRequest, parse_job_id
from verbatim.engines.process_pool import EnginePool
from verbatim.engines.yandex_engine import to_result

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
    # Labelling is only available in FULL_DATA mode (the server refuses it otherwise).
    assert second["recognitionModel"]["audioProcessingType"] == "FULL_DATA"
    # Speakers come from each response's channelTag (the server sets none inside `final`).
    assert [s["speaker"] for s in d["segments"]][:2] == ["SPEAKER_1", "SPEAKER_2"]
    assert {s["label"] for s in d["speakers"]} == {"SPEAKER_1", "SPEAKER_2"}
    results = row.raw_response["operations"][0]["results"]
    assert "statusCode" in results[0]
    finals = [r["final"]["alternatives"][0] for r in results if "final" in r]
    assert finals and any("finalRefinement" in r for r in results)
    # Each phrase once: the normalised refinement of a final is not a second phrase.
    assert len(words) == sum(len(f["words"]) for f in finals)
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


async def test_a_worker_killed_while_polling_resumes_the_same_operation(
    tmp_path: Path, database_url: str, yandex_server: YandexServer
) -> None:
    settings = engine_settings(tmp_path, database_url, yandex=yandex_server, **KILLABLE)
    yandex_server.hold.set()
    env = {
        "VERBATIM_YANDEX_BASE_URL": yandex_server.url,
        "VERBATIM_YANDEX_OPERATION_URL": yandex_server.url,
        "VERBATIM_YANDEX_API_KEY": yandex_server.key,
    }
    with workers(settings, tmp_path / "workers.log", **env) as pool:
        async with service(settings) as alice:
            audio = (await alice.upload(long_speech(tmp_path / "long.wav", 20))).json()
            started = await start(alice, audio["id"], engine="yandex", language="en")
            first = pool.spawn()

            async def stored() -> bool:
                row = await transcription_row(started["transcription_id"])
                return row.provider_job_id is not None and (
                    yandex_server.count("GET", "/operations/") >= 2
                )

            await wait_for(stored, timeout=90, what="a stored operation being polled")
            pool.kill(first)
            job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
            assert job["status"] == "running" and job["attempts"] == 1, job
            polls_before = yandex_server.count("GET", "/operations/")

            pool.spawn()
            yandex_server.hold.clear()
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
    [(offset, duration, operation_id)] = parse_job_id(row.provider_job_id or "")
    assert list(yandex_server.operations) == [operation_id] and offset == 0.0
    assert duration == pytest.approx(audio["duration"], abs=0.5)
    assert len(yandex_server.submitted) == 1
    assert yandex_server.count("POST", "/stt/v3/recognizeFileAsync") == 1
    assert yandex_server.count("GET", "/operations/") > polls_before
    assert yandex_server.count("GET", "/stt/v3/getRecognition") == 1  # results read once
    assert "engine_job_resumed" in pool.log.read_text()
    assert "lazy dog" in t["text"].lower() and "meeting notes" in t["text"].lower()
    last_end = max(w["end"] for s in t["segments"] for w in s["words"])
    assert last_end > audio["duration"] - 3.0
    assert len(await usage_rows()) == 1


async def test_more_than_two_speakers_are_refused_up_front(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, yandex_server: YandexServer
) -> None:
    """SpeechKit labels at most two speakers: asking for more is a 422, not a wrong answer."""
    settings = engine_settings(tmp_path, database_url, yandex=yandex_server)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "dialogue.wav")).json()
        before = await row_counts()
        for extra in ({"num_speakers": 3}, {"min_speakers": 3, "max_speakers": 4}):
            r = await alice.post(
                f"/api/v1/audio/{audio['id']}/transcriptions",
                json={"engine": "yandex", "mode": "dialogue", **extra},
            )
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert error["code"] == "diarization_unsupported"
            assert error["details"] == {"max_speakers": 2}
        assert await row_counts() == before
        # Two is accepted.
        started = await start(alice, audio["id"], engine="yandex", mode="dialogue", num_speakers=2)
        job = await wait_for_job(alice, started["job_id"])
        assert job["status"] == "completed", job
    assert not yandex_server.deleted and len(yandex_server.submitted) == 1


def test_speakers_are_read_from_each_response_and_the_deprecated_field_is_a_fallback() -> None:
    def final(text: str, start_ms: int) -> dict[str, Any]:
        word = {"text": text, "startTimeMs": str(start_ms), "endTimeMs": str(start_ms + 400)}
        return {"alternatives": [{"words": [word], "text": text, "confidence": 0.9}]}

    results = [
        {"statusCode": {"codeType": "WORKING"}},
        {"final": final("hello.", 0), "channelTag": "1"},
        {"finalRefinement": {"finalIndex": "0", "normalizedText": final("hello.", 0)}},
        {"final": final("hi.", 1000), "channelTag": "0"},
        {"final": {**final("again.", 2000), "channelTag": "1"}},  # deprecated place only
    ]
    request = CloudRequest(model="general", options=TranscribeOptions(dialogue=DialogueOptions()))
    result = to_result([(10.0, 5.0, results)], request)
    assert [(s.text, s.speaker, s.start) for s in result.segments] == [
        ("hello.", "SPEAKER_1", 10.0),
        ("hi.", "SPEAKER_2", 11.0),
        ("again.", "SPEAKER_1", 12.0),
    ]
    mono = to_result([(0.0, 5.0, results)], CloudRequest("general", TranscribeOptions()))
    assert [s.speaker for s in mono.segments] == [None, None, None]
