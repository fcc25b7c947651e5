"""The stored outputs (raw_transcript.json, agent_optimized.json) on both storage backends: written
when the real model's transcription completes and after an edit, served by GET /raw and through
both kinds of presigned link, rebuilt when missing, removed with the transcription or its audio;
another user gets 404 on every new route."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ApiUser
from tests.reprocess.helpers import me, stored_raw, transcribe
from tests.s3 import backend_settings, delete_object, object_keys, read_object
from verbatim.config import Settings
from verbatim.models import Transcription, TranscriptionStatus
from verbatim.services import get_services


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    moto = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    return backend_settings(request.param, tmp_path, database_url, moto)


def keys(tenant_id: str, tid: str) -> tuple[str, str]:
    return f"{tenant_id}/{tid}/raw_transcript.json", f"{tenant_id}/{tid}/agent_optimized.json"


async def fetch_link(user: ApiUser, settings: Settings, url: str) -> httpx.Response:
    """A link is used without credentials: S3's straight from the store, the local backend's
    signed URL from this API."""
    if settings.storage == "s3":
        assert url.startswith(str(settings.s3_endpoint_url)), url
        assert "X-Amz-Signature=" in url
        async with httpx.AsyncClient(timeout=30) as anonymous:
            return await anonymous.get(url)
    assert url.startswith("http://verbatim.test/api/v1/storage/local/"), url
    return await user.client.get(url)


@pytest.mark.slow
async def test_outputs_are_written_served_linked_and_deleted(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    tenant = (await me(alice))["tenant_id"]
    t = await transcribe(alice)
    tid = t["id"]
    raw_key, agent_key = keys(tenant, tid)
    # Written by the job, just after its commit.
    raw = await stored_raw(settings, tenant, tid, 1)
    assert object_keys(settings, f"{tenant}/") == sorted([raw_key, agent_key])
    assert raw["id"] == tid and raw["version"] == 1
    assert raw["engine"] == "faster-whisper" and raw["model"] == t["model_name"]
    assert raw["options"]["beam_size"] == 5
    assert raw["language"] == "en" and raw["duration"] == pytest.approx(6.25, abs=0.1)
    assert raw["quality"]["segments"] == len(raw["segments"]) > 0
    assert raw["avg_confidence"] == t["avg_confidence"]
    words = [w["word"] for s in raw["segments"] for w in s["words"]]
    assert "lazy" in " ".join(words).lower()
    assert all(
        {"start", "end", "probability"} <= set(w) for s in raw["segments"] for w in s["words"]
    )
    assert "raw_response" in raw  # the local engine keeps none: null, a cloud one's answer
    agent = json.loads(read_object(settings, agent_key))
    live_agent = (await alice.get(f"/api/v1/transcriptions/{tid}/agent")).json()
    assert agent == live_agent and agent["schema_version"] == 1

    # GET /raw serves the stored file as it is.
    r = await alice.get(f"/api/v1/transcriptions/{tid}/raw")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.content == read_object(settings, raw_key)

    # Links to both files, and the raw one alone; usable without credentials.
    r = await alice.get(f"/api/v1/transcriptions/{tid}/links")
    assert r.status_code == 200, r.text
    links = r.json()
    got_raw = await fetch_link(alice, settings, links["raw_url"])
    got_agent = await fetch_link(alice, settings, links["agent_url"])
    assert got_raw.status_code == 200 and got_raw.content == read_object(settings, raw_key)
    assert got_agent.status_code == 200 and json.loads(got_agent.content) == live_agent
    assert 'filename="agent_optimized.json"' in got_agent.headers["content-disposition"]
    r = await alice.get(f"/api/v1/transcriptions/{tid}/raw", params={"presigned": "true"})
    assert r.status_code == 200 and r.json()["filename"] == "raw_transcript.json"
    got = await fetch_link(alice, settings, r.json()["url"])
    assert got.status_code == 200 and json.loads(got.content)["id"] == tid

    # Another user: 404 on every new route, nothing rendered or stored for them.
    before = object_keys(settings)
    for url, params in (
        (f"/api/v1/transcriptions/{tid}/raw", {}),
        (f"/api/v1/transcriptions/{tid}/raw", {"presigned": "true"}),
        (f"/api/v1/transcriptions/{tid}/links", {}),
        (f"/api/v1/transcriptions/{tid}/versions/1", {}),
        (f"/api/v1/transcriptions/{tid}/export", {"format": "txt", "version": "1"}),
    ):
        r = await bob.get(url, params=params)
        assert r.status_code == 404 and r.json()["error"]["code"] == "transcription_not_found"
    r = await bob.post(f"/api/v1/transcriptions/{tid}/reprocess", json={"beam_size": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "transcription_not_found"
    assert (await alice.get(f"/api/v1/transcriptions/{uuid.uuid4()}/raw")).status_code == 404
    assert object_keys(settings) == before

    # Missing (deleted behind the service's back): rebuilt from the database on read.
    delete_object(settings, raw_key)
    delete_object(settings, agent_key)
    r = await alice.get(f"/api/v1/transcriptions/{tid}/raw")
    assert r.status_code == 200 and r.json()["segments"] == raw["segments"]
    assert object_keys(settings, f"{tenant}/") == sorted([raw_key, agent_key])

    # An edit is a new version: the files follow it.
    r = await alice.patch(
        f"/api/v1/transcriptions/{tid}/segments/0", json={"text": "Edited by hand."}
    )
    assert r.status_code == 200, r.text
    await stored_raw(settings, tenant, tid, 2)  # a background task after the edit committed
    assert "Edited by hand." in json.loads(read_object(settings, agent_key))["turns"][0]["text"]

    # Deleting the transcription removes its files; deleting an audio file, its transcriptions'.
    r = await alice.delete(f"/api/v1/transcriptions/{tid}")
    assert r.status_code == 204
    assert object_keys(settings, f"{tenant}/") == []
    other = await transcribe(alice)
    await stored_raw(settings, tenant, other["id"], 1)
    assert object_keys(settings, f"{tenant}/") == sorted(keys(tenant, other["id"]))
    r = await alice.delete(f"/api/v1/audio/{other['audio']['id']}")
    assert r.status_code == 204
    assert object_keys(settings, f"{tenant}/") == []


async def test_not_ready_is_409_and_stores_nothing(alice: ApiUser, settings: Settings) -> None:
    user = await me(alice)
    audio = (await alice.upload(Path(__file__).parents[1] / "fixtures" / "speech.wav")).json()
    tid = uuid.uuid4()
    async with get_services().sessionmaker() as session:
        session.add(
            Transcription(
                id=tid,
                user_id=user["id"],
                tenant_id=user["tenant_id"],
                audio_file_id=audio["id"],
                status=TranscriptionStatus.running,
                engine="faster-whisper",
                model_name="tiny.en",
                options={},
            )
        )
        await session.commit()
    for url, params in (
        (f"/api/v1/transcriptions/{tid}/raw", {}),
        (f"/api/v1/transcriptions/{tid}/raw", {"presigned": "true"}),
        (f"/api/v1/transcriptions/{tid}/links", {}),
    ):
        r = await alice.get(url, params=params)
        assert r.status_code == 409 and r.json()["error"]["code"] == "transcription_not_ready"
    r = await alice.post(f"/api/v1/transcriptions/{tid}/reprocess", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "transcription_not_ready"
    assert object_keys(settings, f"{user['tenant_id']}/") == []
