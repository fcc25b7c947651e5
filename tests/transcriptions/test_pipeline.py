"""The core loop through HTTP, on the real model: upload, transcribe, poll, read, export."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import func, select

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from verbatim.models import Job, Transcription
from verbatim.services import get_services

_TIMING = re.compile(r"^(\d\d):(\d\d):(\d\d)[,.](\d{3}) --> (\d\d):(\d\d):(\d\d)[,.](\d{3})$")


def cue_times(text: str) -> list[tuple[float, float]]:
    times = []
    for line in text.splitlines():
        m = _TIMING.match(line.strip())
        if m:
            g = [int(x) for x in m.groups()]
            times.append(
                (
                    g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000,
                    g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000,
                )
            )
    return times


async def transcribe(user: ApiUser, audio_id: str, **options: object) -> dict[str, object]:
    r = await user.post(f"/api/v1/audio/{audio_id}/transcriptions", json=options)
    assert r.status_code == 202, r.text
    started: dict[str, object] = r.json()
    return started


@pytest.mark.slow
async def test_upload_transcribe_read_export(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.m4a")).json()
    started = await transcribe(alice, audio["id"])
    assert started["status"] == "pending"
    job = await wait_for_job(alice, str(started["job_id"]))
    assert job["status"] == "completed", job
    assert job["progress"] == 100.0
    assert job["attempts"] == 1
    assert job["transcription_id"] == started["transcription_id"]
    assert job["audio_file_id"] == audio["id"]

    r = await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")
    assert r.status_code == 200
    t = r.json()
    assert t["status"] == "completed"
    assert "quick brown fox" in t["text"].lower()
    assert t["language"] == "en"
    assert t["model_name"] == "tiny.en"
    assert t["engine"] == "faster-whisper"
    assert 0 < t["avg_confidence"] <= 1
    assert t["word_count"] >= 10
    assert t["processing_time_s"] > 0
    assert abs(t["duration"] - audio["duration"]) < 0.5
    assert t["segments"], t
    words = [w for s in t["segments"] for w in s["words"]]
    assert len(words) == t["word_count"]
    for seg in t["segments"]:
        assert 0 <= seg["start"] < seg["end"] <= t["duration"] + 0.5
        for w in seg["words"]:
            assert seg["start"] - 0.05 <= w["start"] <= w["end"] <= seg["end"] + 0.05
            assert 0 <= w["probability"] <= 1

    base = f"/api/v1/transcriptions/{started['transcription_id']}/export"
    txt = await alice.get(base, params={"format": "txt"})
    assert txt.headers["content-type"].startswith("text/plain")
    assert 'filename="speech.txt"' in txt.headers["content-disposition"]
    assert "quick brown fox" in txt.text.lower()

    for fmt, media in (("srt", "application/x-subrip"), ("vtt", "text/vtt")):
        r = await alice.get(base, params={"format": fmt})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(media)
        assert f'filename="speech.{fmt}"' in r.headers["content-disposition"]
        times = cue_times(r.text)
        assert times, r.text
        for (start, end), nxt in zip(times, [*times[1:], None], strict=True):
            assert start < end
            if nxt is not None:
                assert end <= nxt[0]
        if fmt == "vtt":
            assert r.text.startswith("WEBVTT")

    data = (await alice.get(base, params={"format": "json"})).json()
    assert data["id"] == started["transcription_id"]
    assert [s["text"] for s in data["segments"]] == [s["text"] for s in t["segments"]]

    rows = list(csv.reader(io.StringIO((await alice.get(base, params={"format": "csv"})).text)))
    assert rows[0] == ["start", "end", "speaker", "text", "confidence"]
    assert len(rows) == len(t["segments"]) + 1

    listed = (
        await alice.get("/api/v1/transcriptions", params={"audio_file_id": audio["id"]})
    ).json()
    assert [i["id"] for i in listed["items"]] == [started["transcription_id"]]
    assert "segments" not in listed["items"][0]
    assert (await alice.get("/api/v1/transcriptions", params={"status": "failed"})).json()[
        "total"
    ] == 0
    assert (await alice.get("/api/v1/transcriptions", params={"language": "en"})).json()[
        "total"
    ] == 1


@pytest.mark.slow
async def test_options_are_applied(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech2.wav")).json()
    started = await transcribe(
        alice, audio["id"], language="en", word_timestamps=False, vad_filter=True, model="tiny.en"
    )
    job = await wait_for_job(alice, str(started["job_id"]))
    assert job["status"] == "completed", job
    t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
    assert t["requested_language"] == "en"
    assert t["options"] == {"word_timestamps": False, "vad_filter": True, "beam_size": 5}
    assert all(s["words"] == [] for s in t["segments"])
    assert "second test recording" in t["text"].lower()
    # Without word timestamps the export still makes valid cues.
    srt = await alice.get(
        f"/api/v1/transcriptions/{started['transcription_id']}/export", params={"format": "srt"}
    )
    assert cue_times(srt.text)


async def _counts() -> tuple[int, int]:
    async with get_services().sessionmaker() as session:
        t = await session.scalar(select(func.count()).select_from(Transcription))
        j = await session.scalar(select(func.count()).select_from(Job))
        return int(t or 0), int(j or 0)


async def test_bad_transcription_requests_store_nothing(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    url = f"/api/v1/audio/{audio['id']}/transcriptions"
    cases = [
        ({"model": "large-v3"}, 422, "model_unavailable"),
        ({"model": "/etc/passwd"}, 422, "model_unavailable"),
        ({"model": "../../secret"}, 422, "model_unavailable"),
        ({"language": "english!"}, 422, "validation_error"),
        ({"language": "de"}, 422, "language_unsupported"),
        ({"engine": "whisper.cpp"}, 422, "engine_unavailable"),
        ({"beam_size": 0}, 422, "validation_error"),
        ({"mode": "choir"}, 422, "validation_error"),
        ({"unknown_option": True}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = await alice.post(url, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["code"] == code, body
    r = await alice.post(
        "/api/v1/audio/00000000-0000-0000-0000-000000000000/transcriptions", json={}
    )
    assert r.status_code == 404
    assert await _counts() == (0, 0)


@pytest.mark.slow
async def test_another_user_gets_404_everywhere(alice: ApiUser, bob: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    started = await transcribe(alice, audio["id"])
    await wait_for_job(alice, str(started["job_id"]))
    t_id, j_id = started["transcription_id"], started["job_id"]

    r = await bob.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
    assert r.status_code == 404
    for url in (
        f"/api/v1/transcriptions/{t_id}",
        f"/api/v1/transcriptions/{t_id}/export?format=txt",
        f"/api/v1/jobs/{j_id}",
    ):
        r = await bob.get(url)
        assert r.status_code == 404, url
        assert r.json()["error"]["code"].endswith("not_found")
    assert (await bob.post(f"/api/v1/jobs/{j_id}/cancel")).status_code == 404
    assert (await bob.delete(f"/api/v1/transcriptions/{t_id}")).status_code == 404
    assert (await bob.get("/api/v1/transcriptions")).json()["total"] == 0
    assert (await bob.get("/api/v1/jobs")).json()["total"] == 0
    assert (await alice.get(f"/api/v1/transcriptions/{t_id}")).status_code == 200


@pytest.mark.slow
async def test_export_errors(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    started = await transcribe(alice, audio["id"])
    await wait_for_job(alice, str(started["job_id"]))
    base = f"/api/v1/transcriptions/{started['transcription_id']}/export"
    r = await alice.get(base, params={"format": "docx"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unsupported_format"


@pytest.mark.slow
async def test_delete_transcription_and_audio_cascade(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    first = await transcribe(alice, audio["id"])
    second = await transcribe(alice, audio["id"])
    await wait_for_job(alice, str(first["job_id"]))
    await wait_for_job(alice, str(second["job_id"]))
    r = await alice.delete(f"/api/v1/transcriptions/{first['transcription_id']}")
    assert r.status_code == 204
    assert (
        await alice.get(f"/api/v1/transcriptions/{first['transcription_id']}")
    ).status_code == 404
    assert (await alice.delete(f"/api/v1/audio/{audio['id']}")).status_code == 204
    assert (
        await alice.get(f"/api/v1/transcriptions/{second['transcription_id']}")
    ).status_code == 404
    # Jobs stay as the record of work done, unlinked from the deleted rows.
    job = (await alice.get(f"/api/v1/jobs/{second['job_id']}")).json()
    assert job["status"] == "completed"
    assert job["transcription_id"] is None and job["audio_file_id"] is None
    # Two transcription jobs and the search.index job each completion queued.
    assert await _counts() == (0, 4)


@pytest.mark.slow
async def test_json_export_is_valid_json_with_words(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.ogg")).json()
    started = await transcribe(alice, audio["id"])
    await wait_for_job(alice, str(started["job_id"]))
    r = await alice.get(
        f"/api/v1/transcriptions/{started['transcription_id']}/export", params={"format": "json"}
    )
    assert r.headers["content-type"].startswith("application/json")
    doc = json.loads(r.text)
    assert doc["language"] == "en"
    assert any(
        w["word"].strip().lower().startswith("fox") for s in doc["segments"] for w in s["words"]
    )
