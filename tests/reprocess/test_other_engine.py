"""Reprocessing with another engine and model: the local model's transcript (version 1) is re-run
by the `openai` engine against the local OpenAI-compatible server (tests/engines/servers.py); the
two versions are compared word by word with times, the provider's raw answer is in the stored
raw_transcript.json, and each run is counted once in usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES, wait_for_job
from tests.engines.conftest import engine_settings
from tests.engines.helpers import service, start, usage_rows
from tests.engines.servers import OpenAIServer
from tests.reprocess.helpers import me, stored_raw
from verbatim.engines.process_pool import EnginePool


@pytest.mark.slow
async def test_reprocess_with_another_engine_and_compare(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, openai_server: OpenAIServer
) -> None:
    settings = engine_settings(tmp_path, database_url, openai=openai_server)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"])
        assert (await wait_for_job(alice, started["job_id"]))["status"] == "completed"
        tid = started["transcription_id"]
        local = (await alice.get(f"/api/v1/transcriptions/{tid}")).json()
        assert local["engine"] == "faster-whisper"

        r = await alice.post(f"/api/v1/transcriptions/{tid}/reprocess", json={"engine": "openai"})
        assert r.status_code == 202, r.text
        assert r.json()["engine"] == "openai" and r.json()["model"] == "whisper-1"
        job = await wait_for_job(alice, r.json()["job_id"], timeout=120)
        assert job["status"] == "completed", job

        now = (await alice.get(f"/api/v1/transcriptions/{tid}")).json()
        assert now["engine"] == "openai" and now["model_name"] == "whisper-1"
        assert "quick brown fox" in now["text"].lower()
        v1 = (await alice.get(f"/api/v1/transcriptions/{tid}/versions/1")).json()
        v2 = (await alice.get(f"/api/v1/transcriptions/{tid}/versions/2")).json()
        assert v1["run"]["engine"] == "faster-whisper" and v1["text"] == local["text"]
        assert v2["run"]["engine"] == "openai" and v2["kind"] == "reprocess"

        # The comparison: turns that differ (the provider's server hears with tiny.en too, so
        # the words may agree while the turns are cut differently), word runs with times.
        r = await alice.get(f"/api/v1/transcriptions/{tid}/versions/diff?from=1&to=2")
        assert r.status_code == 200, r.text
        changes = r.json()["changes"]
        turns_1 = [(s["speaker"], s["text"]) for s in v1["segments"]]
        turns_2 = [(s["speaker"], s["text"]) for s in v2["segments"]]
        assert bool(changes) == (turns_1 != turns_2)
        for change in changes:
            assert " ".join(w["text"] for w in change["words"] if w["op"] != "insert").split() == [
                w["word"].strip()
                for i in change["from_segments"]
                for w in v1["segments"][i]["words"]
                if w["word"].strip()
            ]
            for w in change["words"]:
                assert w["start"] is not None and w["end"] >= w["start"]

        # The provider's answer is in the stored raw file; usage counts both runs.
        tenant = (await me(alice))["tenant_id"]
        raw = await stored_raw(settings, tenant, tid, 2)
        assert raw["engine"] == "openai"
        assert raw["raw_response"]["words"] and raw["raw_response"]["text"]
        assert [(e.engine, e.model) for e in await usage_rows()] == [
            ("faster-whisper", local["model_name"]),
            ("openai", "whisper-1"),
        ]
