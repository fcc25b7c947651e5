"""Reprocessing through the API with the real model: a re-run with other options becomes version
2 (kind reprocess) while version 1 stays readable, exportable and comparable (word diff with
times); search follows the current version only; the current version serves unchanged while the
job runs and stays current when the job fails; bad requests are refused with stable codes and
queue nothing; a failed write of the stored files loses no transcript."""

from __future__ import annotations

import asyncio
import time
import uuid

import structlog

from tests.conftest import ApiUser, wait_for_job
from tests.reprocess.helpers import jobs_of, me, stored_raw, transcribe, wait_for_index
from tests.s3 import delete_object, object_keys
from verbatim.config import Settings
from verbatim.models import AudioFile, JobType, Transcription
from verbatim.services import get_services


async def search_hits(user: ApiUser, q: str) -> list[str]:
    r = await user.get("/api/v1/search", params={"q": q, "mode": "text"})
    assert r.status_code == 200, r.text
    return [item["transcription_id"] for item in r.json()["items"]]


async def test_reprocess_makes_version_2_and_keeps_version_1(
    alice: ApiUser, settings: Settings
) -> None:
    t = await transcribe(alice)
    tid = t["id"]
    before_txt = (await alice.get(f"/api/v1/transcriptions/{tid}/export")).text
    assert "lazy" in before_txt.lower()
    # Options no request field sets (an OpenAI-API request's) are kept by a re-run.
    async with get_services().sessionmaker() as session:
        row = await session.get(Transcription, uuid.UUID(tid))
        assert row is not None
        row.options = {**row.options, "source": "openai_api", "task": "transcribe"}
        await session.commit()

    r = await alice.post(
        f"/api/v1/transcriptions/{tid}/reprocess", json={"beam_size": 1, "vad_filter": True}
    )
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["current_version"] == 1 and started["model"] == t["model_name"]
    assert started["options"]["beam_size"] == 1 and started["options"]["vad_filter"] is True
    # While it is queued or running, the current version serves as before.
    now = (await alice.get(f"/api/v1/transcriptions/{tid}")).json()
    assert now["status"] == "completed" and now["options"]["beam_size"] == 5
    assert (await alice.get(f"/api/v1/transcriptions/{tid}/export")).text == before_txt
    # One run at a time: a second request is 409 and queues nothing.
    r = await alice.post(f"/api/v1/transcriptions/{tid}/reprocess", json={"beam_size": 2})
    assert r.status_code == 409 and r.json()["error"]["code"] == "reprocess_in_progress"
    assert len(await jobs_of(tid, JobType.reprocess)) == 1

    job = await wait_for_job(alice, started["job_id"], timeout=120)
    assert job["status"] == "completed" and job["type"] == "reprocess", job
    after = (await alice.get(f"/api/v1/transcriptions/{tid}")).json()
    assert after["status"] == "completed" and after["options"]["beam_size"] == 1
    assert after["options"]["vad_filter"] is True and "lazy" in after["text"].lower()
    assert after["options"]["source"] == "openai_api" and after["options"]["task"] == "transcribe"

    versions = (await alice.get(f"/api/v1/transcriptions/{tid}/versions")).json()
    assert versions["current"] == 2
    assert [(v["version"], v["kind"]) for v in versions["items"]] == [
        (2, "reprocess"),
        (1, "engine"),
    ]
    v1 = (await alice.get(f"/api/v1/transcriptions/{tid}/versions/1")).json()
    v2 = (await alice.get(f"/api/v1/transcriptions/{tid}/versions/2")).json()
    assert v1["current"] is False and v2["current"] is True
    assert v1["run"]["options"]["beam_size"] == 5 and v2["run"]["options"]["beam_size"] == 1
    assert v1["text"] == t["text"] and v2["text"] == after["text"]
    assert all(w["start"] <= w["end"] for s in v2["segments"] for w in s["words"])
    r = await alice.get(f"/api/v1/transcriptions/{tid}/export", params={"version": 1})
    assert r.status_code == 200 and r.text == before_txt
    r = await alice.get(f"/api/v1/transcriptions/{tid}/export", params={"version": 9})
    assert r.status_code == 404 and r.json()["error"]["code"] == "version_not_found"
    r = await alice.get(f"/api/v1/transcriptions/{tid}/versions/3")
    assert r.status_code == 404 and r.json()["error"]["code"] == "version_not_found"

    # The stored files were rewritten for version 2.
    tenant = (await me(alice))["tenant_id"]
    raw = await stored_raw(settings, tenant, tid, 2)
    assert raw["options"]["beam_size"] == 1
    assert [v["kind"] for v in raw["versions"]] == ["engine", "reprocess"]


async def test_search_diff_and_failure_keep_to_the_current_version(
    alice: ApiUser, settings: Settings
) -> None:
    t = await transcribe(alice)
    tid = t["id"]
    await wait_for_index(tid)
    # An edit puts a word the engine never wrote into version 2; search finds it.
    first = (await alice.get(f"/api/v1/transcriptions/{tid}/segments")).json()["items"][0]
    r = await alice.patch(
        f"/api/v1/transcriptions/{tid}/segments/0",
        json={"text": "Zanzibar " + first["text"].strip()},
    )
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    await wait_for_index(tid)
    assert await search_hits(alice, "zanzibar") == [tid]

    r = await alice.post(f"/api/v1/transcriptions/{tid}/reprocess", json={})
    assert r.status_code == 202, r.text
    assert r.json()["current_version"] == 2
    job = await wait_for_job(alice, r.json()["job_id"], timeout=120)
    assert job["status"] == "completed", job
    await wait_for_index(tid)
    # Version 3 is the engine's words again: the edited word is found no more.
    assert await search_hits(alice, "zanzibar") == []
    assert await search_hits(alice, "lazy dog") == [tid]

    r = await alice.get(f"/api/v1/transcriptions/{tid}/versions/diff", params={"from": 2, "to": 3})
    assert r.status_code == 200, r.text
    (change,) = r.json()["changes"]
    assert change["op"] == "replace" and change["from_segments"] == [0]
    assert change["from_start"] == first["start"] and change["to_start"] is not None
    removed = [w for w in change["words"] if w["op"] == "delete"]
    assert removed[0]["text"] == "Zanzibar"
    # The inserted word was timed by the editor; the run carries the time it was given.
    assert removed[0]["start"] is not None and removed[0]["end"] >= removed[0]["start"]
    kept = [w for w in change["words"] if w["op"] == "equal"]
    assert kept and all(w["start"] is not None and w["end"] >= w["start"] for w in kept)

    # A run whose job fails (the media is gone from storage): version 3 stays current.
    current_txt = (await alice.get(f"/api/v1/transcriptions/{tid}/export")).text
    async with get_services().sessionmaker() as session:
        audio = await session.get(AudioFile, t["audio_file_id"])
        assert audio is not None
        key = audio.storage_key
    delete_object(settings, key)
    r = await alice.post(f"/api/v1/transcriptions/{tid}/reprocess", json={"beam_size": 2})
    assert r.status_code == 202, r.text
    job = await wait_for_job(alice, r.json()["job_id"], timeout=120)
    assert job["status"] == "failed" and job["error_code"] == "media_missing", job
    now = (await alice.get(f"/api/v1/transcriptions/{tid}")).json()
    assert now["status"] == "completed" and now["options"]["beam_size"] == 5
    assert (await alice.get(f"/api/v1/transcriptions/{tid}/versions")).json()["current"] == 3
    assert (await alice.get(f"/api/v1/transcriptions/{tid}/export")).text == current_txt


async def test_bad_requests_are_refused_and_queue_nothing(alice: ApiUser) -> None:
    t = await transcribe(alice)
    tid = t["id"]
    url = f"/api/v1/transcriptions/{tid}/reprocess"
    for body, status, code in (
        ({"engine": "no-such-engine"}, 422, "engine_unavailable"),
        ({"engine": "openai"}, 422, "engine_unavailable"),  # not configured on this server
        ({"model": "huge-v9"}, 422, "model_unavailable"),
        ({"beam_size": 99}, 422, "validation_error"),
        ({"beam_sizes": 2}, 422, "validation_error"),
        ({"min_speakers": 2}, 422, "dialogue_options_need_dialogue_mode"),
        (
            {"mode": "dialogue", "min_speakers": 4, "max_speakers": 2},
            422,
            "speaker_range_invalid",
        ),
        ({"mode": "dialogue", "diarization": "channels"}, 422, "channels_need_stereo"),
        ({"language": "xx-yy-zz"}, 422, "validation_error"),
        # A re-run is one engine's; several engines are a new multi-engine transcription.
        (
            {"engines": ["faster-whisper:tiny.en", "faster-whisper:base"]},
            422,
            "reprocess_engines_unsupported",
        ),
    ):
        r = await alice.post(url, json=body)
        assert r.status_code == status and r.json()["error"]["code"] == code, (body, r.text)
    r = await alice.post("/api/v1/transcriptions/not-a-uuid/reprocess", json={})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert await jobs_of(tid, JobType.reprocess) == []
    versions = (await alice.get(f"/api/v1/transcriptions/{tid}/versions")).json()
    assert versions == {"items": [], "current": None}
    # Before any change, version 1 is the transcript as it is.
    v1 = (await alice.get(f"/api/v1/transcriptions/{tid}/versions/1")).json()
    assert v1["current"] is True and v1["kind"] == "engine" and v1["text"] == t["text"]


async def test_a_failed_write_of_the_files_loses_no_transcript(
    alice: ApiUser, settings: Settings
) -> None:
    """The storage refuses the write (a plain file stands where the tenant's folder goes): the
    transcription still completes, and the files appear on the next read."""
    tenant = (await me(alice))["tenant_id"]
    blocker = settings.media_dir / tenant
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    with structlog.testing.capture_logs() as logs:
        t = await transcribe(alice)
        deadline = time.monotonic() + 30
        while not any(e["event"] == "job_after_commit_failed" for e in logs):
            assert time.monotonic() < deadline, "the write was never attempted"
            await asyncio.sleep(0.1)
    assert "lazy" in t["text"].lower()
    assert object_keys(settings, f"{tenant}") == [tenant]  # only the blocker
    r = await alice.get(f"/api/v1/transcriptions/{t['id']}/export", params={"format": "txt"})
    assert r.status_code == 200 and "lazy" in r.text.lower()
    blocker.unlink()
    r = await alice.get(f"/api/v1/transcriptions/{t['id']}/raw")
    assert r.status_code == 200 and r.json()["id"] == t["id"]
    assert object_keys(settings, f"{tenant}/") == [
        f"{tenant}/{t['id']}/agent_optimized.json",
        f"{tenant}/{t['id']}/raw_transcript.json",
    ]
