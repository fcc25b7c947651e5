"""The OpenAI-compatible API through the official `openai` SDK (only `base_url` and `api_key`
changed), against the real app on a socket, the real worker and the real tiny.en model."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import FIXTURES, long_speech
from tests.openai_api.conftest import KeyUser, Served, serve, settings_for
from verbatim.engines.process_pool import EnginePool

SPEECH = FIXTURES / "speech.wav"
_SRT_TIMING = re.compile(r"^\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}$", re.M)
_VTT_TIMING = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}", re.M)


async def library(user: KeyUser) -> dict[str, int]:
    """How many audio files, transcriptions and jobs the user's library holds."""
    counts = {}
    for name, url in (
        ("audio", "/api/v1/audio"),
        ("transcriptions", "/api/v1/transcriptions"),
        ("jobs", "/api/v1/jobs"),
    ):
        r = await user.http.get(url, params={"limit": 100})
        assert r.status_code == 200, r.text
        counts[name] = len(r.json()["items"])
    return counts


def media_files(served: Served) -> list[Path]:
    """Media objects; not the transcripts' stored files (`{tenant}/{transcription}/*.json`)."""
    root = served.settings.media_dir
    outputs = {"raw_transcript.json", "agent_optimized.json"}
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file() and p.name not in outputs]


async def test_json_result_lands_in_the_library(served: Served, carol: KeyUser) -> None:
    client = carol.sdk(served.v1)
    with SPEECH.open("rb") as fh:
        raw = await client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=fh)
    result = raw.parse()
    assert "quick brown fox" in result.text.lower()
    assert result.usage is not None and result.usage.type == "duration"
    assert raw.headers["x-verbatim-stored"] == "true"
    transcription_id = raw.headers["x-verbatim-transcription-id"]

    # As if uploaded and transcribed: the file and its transcript are in the library.
    r = await carol.http.get(f"/api/v1/transcriptions/{transcription_id}")
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["status"] == "completed"
    assert stored["text"] == result.text
    assert stored["model_name"] == "tiny.en"  # whisper-1 is the default model
    assert stored["options"]["source"] == "openai_api"
    assert stored["audio_file_id"] == raw.headers["x-verbatim-audio-id"]
    r = await carol.http.get(f"/api/v1/audio/{stored['audio_file_id']}")
    assert r.status_code == 200 and r.json()["original_filename"] == "speech.wav"
    r = await carol.http.get(f"/api/v1/jobs/{raw.headers['x-verbatim-job-id']}")
    assert r.json()["status"] == "completed"
    assert len(media_files(served)) == 1

    # The same bytes again: one audio file (dedup), a second transcription.
    with SPEECH.open("rb") as fh:
        again = await client.audio.transcriptions.with_raw_response.create(
            model="tiny.en", file=fh, response_format="text"
        )
    assert again.headers["x-verbatim-audio-id"] == raw.headers["x-verbatim-audio-id"]
    counts = await library(carol)
    assert counts["audio"] == 1 and counts["transcriptions"] == 2
    assert len(media_files(served)) == 1


async def test_text_srt_vtt_are_plain_strings(served: Served, carol: KeyUser) -> None:
    client = carol.sdk(served.v1)
    answers: dict[str, Any] = {}
    for fmt in ("text", "srt", "vtt"):
        with SPEECH.open("rb") as fh:
            answers[fmt] = await client.audio.transcriptions.create(
                model="whisper-1", file=fh, response_format=fmt, language="en"
            )
        assert isinstance(answers[fmt], str), fmt
        assert "quick brown fox" in answers[fmt].lower(), (fmt, answers[fmt])
    assert answers["text"].endswith("\n") and "-->" not in answers["text"]
    assert answers["srt"].lstrip().startswith("1\n")
    assert _SRT_TIMING.search(answers["srt"]), answers["srt"]
    assert answers["vtt"].startswith("WEBVTT")
    assert _VTT_TIMING.search(answers["vtt"]), answers["vtt"]


async def test_verbose_json_with_word_and_segment_granularities(
    served: Served, carol: KeyUser
) -> None:
    client = carol.sdk(served.v1)
    with SPEECH.open("rb") as fh:
        both = await client.audio.transcriptions.create(
            model="whisper-1",
            file=fh,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert both.task == "transcribe"
    assert both.language == "english"
    assert 6.0 < both.duration < 7.0
    assert both.segments and both.words
    text = " ".join(s.text for s in both.segments)
    assert text.strip() == both.text
    for i, seg in enumerate(both.segments):
        assert seg.id == i
        assert 0 <= seg.start < seg.end <= both.duration + 0.5
        assert seg.avg_logprob < 0 and 0 <= seg.no_speech_prob <= 1
        assert seg.compression_ratio > 0
    words = [w.word for w in both.words]
    assert [w.lower().strip(",.") for w in words[:4]] == ["the", "quick", "brown", "fox"]
    assert all(w == w.strip() for w in words)
    starts = [w.start for w in both.words]
    assert starts == sorted(starts)
    assert all(w.start <= w.end <= both.duration + 0.5 for w in both.words)

    # Words only: no segments; the default (segment) has no words.
    with SPEECH.open("rb") as fh:
        words_only = await client.audio.transcriptions.create(
            model="whisper-1",
            file=fh,
            response_format="verbose_json",
            timestamp_granularities=["word"],
        )
    assert words_only.words and words_only.segments is None
    with SPEECH.open("rb") as fh:
        default = await client.audio.transcriptions.create(
            model="whisper-1", file=fh, response_format="verbose_json", prompt="Fox, dog."
        )
    assert default.segments and default.words is None


async def test_models_list_and_retrieve(served: Served, carol: KeyUser) -> None:
    client = carol.sdk(served.v1)
    ids = [m.id async for m in client.models.list()]
    assert {"whisper-1", "faster-whisper", "tiny.en"} <= set(ids)
    model = await client.models.retrieve("tiny.en")
    assert model.id == "tiny.en" and model.object == "model"
    assert model.model_extra and model.model_extra["multilingual"] is False
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


async def test_engine_name_maps_to_the_default_model(served: Served, carol: KeyUser) -> None:
    with SPEECH.open("rb") as fh:
        raw = await carol.sdk(served.v1).audio.transcriptions.with_raw_response.create(
            model="faster-whisper", file=fh
        )
    assert "fox" in raw.parse().text.lower()
    r = await carol.http.get(f"/api/v1/transcriptions/{raw.headers['x-verbatim-transcription-id']}")
    assert r.json()["model_name"] == "tiny.en" and r.json()["engine"] == "faster-whisper"


async def test_store_false_keeps_nothing(served: Served, carol: KeyUser) -> None:
    client = carol.sdk(served.v1)
    with SPEECH.open("rb") as fh:
        raw = await client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=fh, extra_body={"store": "false"}
        )
    assert "fox" in raw.parse().text.lower()
    assert raw.headers["x-verbatim-stored"] == "false"
    assert "x-verbatim-transcription-id" not in raw.headers
    assert await library(carol) == {"audio": 0, "transcriptions": 0, "jobs": 0}
    assert media_files(served) == []

    # The header does the same, for clients that cannot add form fields.
    with SPEECH.open("rb") as fh:
        answer = await client.audio.transcriptions.create(
            model="whisper-1",
            file=fh,
            response_format="verbose_json",
            extra_headers={"X-Verbatim-Store": "false"},
        )
    assert answer.segments
    assert await library(carol) == {"audio": 0, "transcriptions": 0, "jobs": 0}
    assert media_files(served) == []


async def test_store_false_leaves_a_file_already_in_the_library(
    served: Served, carol: KeyUser
) -> None:
    client = carol.sdk(served.v1)
    with SPEECH.open("rb") as fh:
        kept = await client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=fh
        )
    with SPEECH.open("rb") as fh:
        await client.audio.transcriptions.create(
            model="whisper-1", file=fh, extra_body={"store": "false"}
        )
    counts = await library(carol)
    assert counts["audio"] == 1 and counts["transcriptions"] == 1
    r = await carol.http.get(f"/api/v1/audio/{kept.headers['x-verbatim-audio-id']}/content")
    assert r.status_code == 200 and r.content == SPEECH.read_bytes()


async def test_per_user_default_and_request_override(served: Served, carol: KeyUser) -> None:
    r = await carol.http.get("/api/v1/auth/me")
    assert r.json()["openai_store"] is True
    r = await carol.http.patch("/api/v1/auth/me", json={"openai_store": False})
    assert r.status_code == 200 and r.json()["openai_store"] is False
    client = carol.sdk(served.v1)
    with SPEECH.open("rb") as fh:
        await client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert await library(carol) == {"audio": 0, "transcriptions": 0, "jobs": 0}
    with SPEECH.open("rb") as fh:  # this one asks to be kept
        await client.audio.transcriptions.create(
            model="whisper-1", file=fh, extra_body={"store": "true"}
        )
    counts = await library(carol)
    assert counts["audio"] == 1 and counts["transcriptions"] == 1
    r = await carol.http.patch("/api/v1/auth/me", json={"openai_store": "maybe"})
    assert r.status_code == 422


async def test_translation_refused_for_an_english_only_model(
    served: Served, carol: KeyUser
) -> None:
    client = carol.sdk(served.v1)
    for model in ("whisper-1", "tiny.en"):
        with SPEECH.open("rb") as fh, pytest.raises(openai.BadRequestError) as caught:
            await client.audio.translations.create(model=model, file=fh)
        error = caught.value.body
        assert caught.value.status_code == 400
        assert error["code"] == "model_not_multilingual", error  # type: ignore[index]
        assert error["param"] == "model"  # type: ignore[index]
        assert error["type"] == "invalid_request_error"  # type: ignore[index]
        assert "English-only" in error["message"]  # type: ignore[index]
    assert await library(carol) == {"audio": 0, "transcriptions": 0, "jobs": 0}
    assert media_files(served) == []


async def test_bad_keys(served: Served, carol: KeyUser) -> None:
    for key in ("vb_not-a-real-key", "sk-proj-abcdef", "garbage"):
        client = openai.AsyncOpenAI(base_url=served.v1, api_key=key, max_retries=0)
        with SPEECH.open("rb") as fh, pytest.raises(openai.AuthenticationError) as caught:
            await client.audio.transcriptions.create(model="whisper-1", file=fh)
        assert caught.value.status_code == 401
        assert set(caught.value.body) >= {"message", "type", "param", "code"}  # type: ignore[arg-type]
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    # A revoked key stops working.
    r = await carol.http.get("/api/v1/api-keys")
    key_id = r.json()["items"][0]["id"]
    assert (await carol.http.delete(f"/api/v1/api-keys/{key_id}")).status_code == 200
    with pytest.raises(openai.AuthenticationError) as caught:
        await carol.sdk(served.v1).models.list()
    assert caught.value.code == "invalid_api_key"
    assert await library(carol) == {"audio": 0, "transcriptions": 0, "jobs": 0}


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"model": "no-such-model"}, "model", "model_not_found"),
        ({"model": "../../etc"}, "model", "model_not_found"),
        ({"model": ""}, "model", "missing_model"),
        ({"model": "whisper-1", "response_format": "xml"}, "response_format", "invalid_value"),
        ({"model": "whisper-1", "temperature": 1.5}, "temperature", "invalid_value"),
        ({"model": "whisper-1", "language": "english"}, "language", "invalid_language"),
        ({"model": "whisper-1", "language": "fr"}, "language", "unsupported_language"),
        (
            {"model": "whisper-1", "timestamp_granularities": ["word"]},
            "timestamp_granularities",
            "invalid_value",
        ),
        (
            {"model": "whisper-1", "response_format": "verbose_json", "extra_body": {"store": "x"}},
            "store",
            "invalid_value",
        ),
        (
            {"model": "whisper-1", "response_format": "srt", "stream": True},
            "response_format",
            "unsupported_value",
        ),
    ],
)
async def test_bad_fields_answer_in_openai_shape_and_store_nothing(
    served: Served, carol: KeyUser, kwargs: dict[str, Any], param: str, code: str
) -> None:
    client = carol.sdk(served.v1)
    with SPEECH.open("rb") as fh, pytest.raises(openai.BadRequestError) as caught:
        await client.audio.transcriptions.create(file=fh, **kwargs)
    body = caught.value.body
    assert set(body) >= {"message", "type", "param", "code"}, body  # type: ignore[arg-type]
    assert body["param"] == param and body["code"] == code, body  # type: ignore[index]
    assert body["type"] == "invalid_request_error"  # type: ignore[index]
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert await library(carol) == {"audio": 0, "transcriptions": 0, "jobs": 0}
    assert media_files(served) == []
    assert list(served.settings.tmp_dir.glob("upload-*")) == []


async def test_bad_files(served: Served, carol: KeyUser) -> None:
    client = carol.sdk(served.v1)
    with (FIXTURES / "not_audio.mp3").open("rb") as fh, pytest.raises(openai.APIStatusError) as c:
        await client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert c.value.status_code == 415
    assert c.value.body["code"] == "unsupported_media"  # type: ignore[index]
    assert c.value.body["param"] == "file"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as c2:
        await client.audio.transcriptions.create(model="whisper-1", file=("empty.wav", b""))
    assert c2.value.body["code"] == "empty_file"  # type: ignore[index]
    r = await carol.http.post(
        f"{served.v1}/audio/transcriptions",
        headers={"Authorization": f"Bearer {carol.key}"},
        data={"model": "whisper-1"},
        files={"other": ("a.txt", b"x")},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "file_missing" and r.json()["error"]["param"] == "file"
    assert await library(carol) == {"audio": 0, "transcriptions": 0, "jobs": 0}
    assert list(served.settings.tmp_dir.glob("upload-*")) == []


async def test_unknown_routes_and_methods_answer_in_openai_shape(
    served: Served, carol: KeyUser
) -> None:
    auth = {"Authorization": f"Bearer {carol.key}"}
    r = await carol.http.get(f"{served.v1}/chat/completions", headers=auth)
    assert r.status_code == 404
    assert set(r.json()["error"]) >= {"message", "type", "param", "code"}
    r = await carol.http.get(f"{served.v1}/audio/transcriptions", headers=auth)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    async with httpx.AsyncClient() as anonymous:
        r = await anonymous.get(f"{served.v1}/models")  # no key at all
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    # The rest of the API keeps its own shape.
    r = await carol.http.get("/api/v1/transcriptions/not-a-uuid")
    assert set(r.json()["error"]) == {"code", "message", "details", "request_id"}


async def test_another_user_cannot_see_the_request(
    served: Served, carol: KeyUser, dave: KeyUser
) -> None:
    with SPEECH.open("rb") as fh:
        raw = await carol.sdk(served.v1).audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=fh
        )
    ids = raw.headers
    for url in (
        f"/api/v1/transcriptions/{ids['x-verbatim-transcription-id']}",
        f"/api/v1/audio/{ids['x-verbatim-audio-id']}",
        f"/api/v1/jobs/{ids['x-verbatim-job-id']}",
    ):
        assert (await dave.http.get(url)).status_code == 404, url
    # Dave sending the same bytes gets his own copy; Carol's library is unchanged.
    with SPEECH.open("rb") as fh:
        raw2 = await dave.sdk(served.v1).audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=fh
        )
    assert raw2.headers["x-verbatim-audio-id"] != ids["x-verbatim-audio-id"]
    assert (await library(carol))["transcriptions"] == 1
    assert (await library(dave))["transcriptions"] == 1


@pytest.mark.slow
async def test_stream_sends_deltas_as_segments_finish(
    served: Served, carol: KeyUser, tmp_path: Path
) -> None:
    audio = long_speech(tmp_path / "long.wav", 90)
    client = carol.sdk(served.v1)
    arrivals: list[tuple[float, Any]] = []
    with audio.open("rb") as fh:
        stream = await client.audio.transcriptions.create(model="whisper-1", file=fh, stream=True)
        async for event in stream:
            arrivals.append((time.monotonic(), event))
    deltas = [e for _, e in arrivals if e.type == "transcript.text.delta"]
    done = [e for _, e in arrivals if e.type == "transcript.text.done"]
    assert len(done) == 1 and arrivals[-1][1].type == "transcript.text.done"
    assert len(deltas) >= 5
    assert "".join(d.delta for d in deltas) == done[0].text
    assert "quick brown fox" in done[0].text.lower()
    # Progressive: the first text arrived well before the end.
    assert arrivals[-1][0] - arrivals[0][0] > 1.0, [t - arrivals[0][0] for t, _ in arrivals]
    # Kept in the library, and the published partial rows are gone.
    r = await carol.http.get("/api/v1/transcriptions")
    [item] = r.json()["items"]
    assert item["status"] == "completed"
    from sqlalchemy import func, select

    from verbatim.models import PartialSegment
    from verbatim.services import get_services

    async with get_services().sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(PartialSegment)) == 0


async def test_stream_with_store_false(served: Served, carol: KeyUser) -> None:
    client = carol.sdk(served.v1)
    with SPEECH.open("rb") as fh:
        stream = await client.audio.transcriptions.create(
            model="whisper-1", file=fh, stream=True, extra_body={"store": "false"}
        )
        events = [event async for event in stream]
    assert events[-1].type == "transcript.text.done"
    assert "fox" in events[-1].text.lower()
    assert await library(carol) == {"audio": 0, "transcriptions": 0, "jobs": 0}


@pytest.fixture
async def impatient(tmp_path: Path, database_url: str, engine_pool: EnginePool) -> Any:
    """A server that waits only 0.5 s for a job."""
    async for s in serve(
        settings_for(tmp_path, database_url, openai_wait_timeout_s=0.5), engine_pool
    ):
        yield s


@pytest.mark.slow
async def test_timeout_names_the_job_to_poll(
    impatient: Served, tmp_path: Path, engine_pool: EnginePool
) -> None:
    from tests.conftest import wait_for_job  # noqa: F401 - same polling as other tests
    from tests.openai_api.conftest import make_user

    audio = long_speech(tmp_path / "long.wav", 40)
    async for user in make_user(impatient, f"t-{uuid.uuid4().hex[:6]}@example.com"):
        client = user.sdk(impatient.v1)
        with audio.open("rb") as fh, pytest.raises(openai.APIStatusError) as caught:
            await client.audio.transcriptions.create(model="whisper-1", file=fh)
        assert caught.value.status_code == 504
        error = caught.value.body
        assert error["code"] == "job_timeout"  # type: ignore[index]
        job_id = error["job_id"]  # type: ignore[index]
        assert f"/api/v1/jobs/{job_id}" in error["message"]  # type: ignore[index]
        assert caught.value.response.headers["x-should-retry"] == "false"
        for _ in range(300):
            job = (await user.http.get(f"/api/v1/jobs/{job_id}")).json()
            if job["status"] == "completed":
                break
            await __import__("asyncio").sleep(0.2)
        assert job["status"] == "completed"
        r = await user.http.get(f"/api/v1/transcriptions/{error['transcription_id']}")  # type: ignore[index]
        assert "quick brown fox" in r.json()["text"].lower()

        # Keeping nothing, a timeout cancels the job and removes what the request made.
        with audio.open("rb") as fh, pytest.raises(openai.APIStatusError) as caught:
            await client.audio.transcriptions.create(
                model="whisper-1", file=fh, extra_body={"store": "false"}
            )
        assert caught.value.body["code"] == "timeout"  # type: ignore[index]
        assert "job_id" not in caught.value.body  # type: ignore[operator]
        counts = await library(user)
        assert counts["transcriptions"] == 1  # the first request's, kept


async def test_stream_keepalive_comments_are_skipped_by_clients(
    served: Served, carol: KeyUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verbatim.openai_api import streaming

    monkeypatch.setattr(streaming, "KEEPALIVE_S", 0.0)  # a comment on every quiet poll
    raw_lines: list[str] = []
    async with carol.http.stream(
        "POST",
        f"{served.v1}/audio/transcriptions",
        headers={"Authorization": f"Bearer {carol.key}"},
        data={"model": "whisper-1", "stream": "true"},
        files={"file": ("speech.wav", SPEECH.read_bytes(), "audio/wav")},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            raw_lines.append(line)
    assert ": keepalive" in raw_lines
    with SPEECH.open("rb") as fh:
        stream = await carol.sdk(served.v1).audio.transcriptions.create(
            model="whisper-1", file=fh, stream=True
        )
        events = [e async for e in stream]
    assert events[-1].type == "transcript.text.done" and "fox" in events[-1].text.lower()
