"""A worker killed in the middle of a reprocess loses nothing: the current version serves
unchanged meanwhile, the stalled job is taken up again by another worker, and exactly one new
version results. Separate `verbatim worker` processes run the jobs, with the real model."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import long_speech, make_settings, register, wait_for_job
from tests.jobs.test_jobs import segments_of, wait_until_running
from tests.live import spawn_worker, stop_worker
from tests.reprocess.helpers import me, stored_raw
from verbatim.app import create_app


@pytest.mark.slow
async def test_worker_killed_mid_reprocess_loses_nothing(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, worker_heartbeat_s=1.0, stalled_after_s=4.0)
    app = create_app(settings, with_worker=False)  # only the worker processes do the work
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with LifespanManager(app, startup_timeout=60) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
                alice = await register(c)
                audio = (await alice.upload(long_speech(tmp_path / "long.wav", 150))).json()
                r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
                assert r.status_code == 202, r.text
                tid = r.json()["transcription_id"]
                workers.append(spawn_worker(settings, log))
                job = await wait_for_job(alice, r.json()["job_id"], timeout=180)
                assert job["status"] == "completed", (job, log.read_text()[-3000:])
                original = (await alice.get(f"/api/v1/transcriptions/{tid}/export")).text

                r = await alice.post(
                    f"/api/v1/transcriptions/{tid}/reprocess", json={"beam_size": 1}
                )
                assert r.status_code == 202, r.text
                job_id = r.json()["job_id"]
                await wait_until_running(alice, job_id, timeout=90)
                first = workers[0]
                children = psutil.Process(first.pid).children(recursive=True)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                _gone, alive = psutil.wait_procs(children, timeout=10)
                assert not alive, alive

                # Meanwhile the current version serves as before.
                job = (await alice.get(f"/api/v1/jobs/{job_id}")).json()
                assert job["status"] == "running" and job["attempts"] == 1
                t = (await alice.get(f"/api/v1/transcriptions/{tid}")).json()
                assert t["status"] == "completed" and t["options"]["beam_size"] == 5
                assert (await alice.get(f"/api/v1/transcriptions/{tid}/export")).text == original
                versions = (await alice.get(f"/api/v1/transcriptions/{tid}/versions")).json()
                assert versions["current"] is None

                workers.append(spawn_worker(settings, log))
                job = await wait_for_job(alice, job_id, timeout=240)
                assert job["status"] == "completed", (job, log.read_text()[-3000:])
                assert job["attempts"] == 2
                versions = (await alice.get(f"/api/v1/transcriptions/{tid}/versions")).json()
                assert [(v["version"], v["kind"]) for v in versions["items"]] == [
                    (2, "reprocess"),
                    (1, "engine"),
                ]
                r = await alice.get(f"/api/v1/transcriptions/{tid}/export", params={"version": 1})
                assert r.text == original
                t = (await alice.get(f"/api/v1/transcriptions/{tid}")).json()
                assert t["options"]["beam_size"] == 1
                indexes = sorted(s.index for s in await segments_of(tid))
                assert indexes == list(range(len(indexes))) and indexes
                assert "lazy dog" in t["text"].lower()
                events = [
                    json.loads(line)
                    for line in log.read_text().splitlines()
                    if line.startswith("{")
                ]
                done = [e for e in events if e.get("event") == "transcription_reprocessed"]
                assert [e["job_id"] for e in done] == [job_id]
                tenant = (await me(alice))["tenant_id"]
                raw = await stored_raw(settings, tenant, tid, 2)
                assert raw["options"]["beam_size"] == 1
    finally:
        for w in workers:
            stop_worker(w)
