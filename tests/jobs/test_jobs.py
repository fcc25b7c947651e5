"""Jobs under stress: cancelling, per-user limits, a crashing engine, a killed worker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from tests.conftest import FIXTURES, ApiUser, long_speech, make_settings, register, wait_for_job
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.engines.process_pool import EnginePool
from verbatim.models import Job, JobStatus, JobType, Segment, User
from verbatim.services import get_services


async def wait_until_running(user: ApiUser, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = (await user.get(f"/api/v1/jobs/{job_id}")).json()
        if job["status"] == "running" and job["progress"] > 0:
            return job
        assert job["status"] in ("pending", "running"), job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never ran: {job}")


async def start(user: ApiUser, audio_id: str) -> dict[str, str]:
    r = await user.post(f"/api/v1/audio/{audio_id}/transcriptions", json={})
    assert r.status_code == 202, r.text
    body: dict[str, str] = r.json()
    return body


async def segments_of(transcription_id: str) -> list[Segment]:
    async with get_services().sessionmaker() as session:
        rows = await session.scalars(
            select(Segment).where(Segment.transcription_id == uuid.UUID(transcription_id))
        )
        return list(rows)


@pytest.mark.slow
async def test_list_and_filter_jobs(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    started = await start(alice, audio["id"])
    await wait_for_job(alice, started["job_id"])
    # The completion queued the transcription's search.index job.
    jobs = (await alice.get("/api/v1/jobs")).json()
    assert jobs["total"] == 2
    assert {j["type"] for j in jobs["items"]} == {"transcription", "search_index"}
    jobs = (await alice.get("/api/v1/jobs", params={"type": "transcription"})).json()
    assert jobs["total"] == 1 and jobs["items"][0]["id"] == started["job_id"]
    completed = {"status": "completed", "type": "transcription"}
    assert (await alice.get("/api/v1/jobs", params=completed)).json()["total"] == 1
    assert (await alice.get("/api/v1/jobs", params={"status": "failed"})).json()["total"] == 0
    assert (await alice.get("/api/v1/jobs", params={"type": "download"})).json()["total"] == 0
    assert (await alice.get("/api/v1/jobs", params={"status": "nope"})).status_code == 422
    r = await alice.post(f"/api/v1/jobs/{started['job_id']}/cancel")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "job_not_cancellable"
    assert (await alice.get(f"/api/v1/jobs/{uuid.uuid4()}")).status_code == 404


@pytest.mark.slow
async def test_cancel_running_and_pending_jobs(alice: ApiUser, tmp_path: Path) -> None:
    long_audio = (await alice.upload(long_speech(tmp_path / "long.wav", 90))).json()
    running = await start(alice, long_audio["id"])
    queued = await start(alice, long_audio["id"])
    await wait_until_running(alice, running["job_id"])
    # One engine process: the second job is still waiting in the queue.
    assert (await alice.get(f"/api/v1/jobs/{queued['job_id']}")).json()["status"] == "pending"

    r = await alice.post(f"/api/v1/jobs/{queued['job_id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await alice.post(f"/api/v1/jobs/{running['job_id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    await asyncio.sleep(3)
    for started in (running, queued):
        job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
        assert job["status"] == "cancelled" and job["finished_at"]
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        assert t["status"] == "cancelled"
        assert t["segments"] == []
        assert await segments_of(started["transcription_id"]) == []

    # The engine recovers: the next job runs to completion.
    small = (await alice.upload(FIXTURES / "speech.wav")).json()
    after = await start(alice, small["id"])
    assert (await wait_for_job(alice, after["job_id"]))["status"] == "completed"


@pytest.mark.slow
async def test_per_user_running_limit(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    settings = make_settings(tmp_path, database_url, max_running_per_user=1)
    app = create_app(settings, with_worker=True, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
            alice = await register(c, "limit@example.com")
            other = await register(c, "other@example.com")
            # Alice already has a job running elsewhere (say, on another worker).
            async with get_services().sessionmaker() as session:
                user = await session.scalar(select(User).where(User.email == "limit@example.com"))
                assert user is not None
                busy = Job(
                    user_id=user.id,
                    tenant_id=user.tenant_id,
                    type=JobType.download,
                    status=JobStatus.running,
                    payload={},
                )
                session.add(busy)
                await session.commit()
                busy_id = busy.id

            audio = (await alice.upload(FIXTURES / "speech.wav")).json()
            waiting = await start(alice, audio["id"])
            other_audio = (await other.upload(FIXTURES / "speech.wav")).json()
            other_job = await start(other, other_audio["id"])
            # Another user is not held back by Alice's limit.
            assert (await wait_for_job(other, other_job["job_id"]))["status"] == "completed"
            job = (await alice.get(f"/api/v1/jobs/{waiting['job_id']}")).json()
            assert job["status"] == "pending"
            assert job["stage"] == "waiting_for_user_slot"

            async with get_services().sessionmaker() as session:
                busy_row = await session.get(Job, busy_id)
                assert busy_row is not None
                busy_row.transition(JobStatus.completed)
                await session.commit()
            assert (await wait_for_job(alice, waiting["job_id"]))["status"] == "completed"


@pytest.mark.slow
async def test_engine_crash_is_retried_to_completion(
    alice: ApiUser, tmp_path: Path, engine_pool: EnginePool
) -> None:
    audio = (await alice.upload(long_speech(tmp_path / "long.wav", 60))).json()
    started = await start(alice, audio["id"])
    await wait_until_running(alice, started["job_id"])
    (proc,) = [p for p in engine_pool._all if p.alive()]
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    job = await wait_for_job(alice, started["job_id"], timeout=120)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2
    t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
    assert [s["index"] for s in t["segments"]] == list(range(len(t["segments"])))
    assert "lazy dog" in t["text"].lower() and "meeting notes" in t["text"].lower()


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(
        VERBATIM_ENV="test",
        VERBATIM_DATABASE_URL=str(settings.database_url),
        VERBATIM_DATA_DIR=str(settings.data_dir),
        VERBATIM_AUTO_MIGRATE="false",
        VERBATIM_SECRET_KEY=str(settings.secret_key),
        VERBATIM_WORKER_HEARTBEAT_S="1",
        VERBATIM_STALLED_AFTER_S="4",
        VERBATIM_LOG_JSON="true",
    )
    return env


def _spawn_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "verbatim.cli", "worker"],
        env=_worker_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
async def test_worker_killed_mid_job_is_recovered(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, worker_heartbeat_s=1.0, stalled_after_s=4.0)
    # The API runs no worker here: only the separate worker processes do the work.
    app = create_app(settings, with_worker=False)
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with LifespanManager(app, startup_timeout=60) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
                alice = await register(c)
                audio = (await alice.upload(long_speech(tmp_path / "long.wav", 120))).json()
                started = await start(alice, audio["id"])
                workers.append(_spawn_worker(settings, log))
                await wait_until_running(alice, started["job_id"], timeout=90)

                first = workers[0]
                children = psutil.Process(first.pid).children(recursive=True)
                assert children, "the worker runs its engine in a child process"
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                # The orphaned engine process notices and exits by itself.
                _gone, alive = psutil.wait_procs(children, timeout=10)
                assert not alive, alive

                job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
                assert job["status"] == "running" and job["attempts"] == 1

                workers.append(_spawn_worker(settings, log))
                job = await wait_for_job(alice, started["job_id"], timeout=180)
                assert job["status"] == "completed", (job, log.read_text()[-3000:])
                assert job["attempts"] == 2
                t = (
                    await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")
                ).json()
                indexes = [s["index"] for s in t["segments"]]
                assert indexes == list(range(len(indexes)))
                assert len(await segments_of(started["transcription_id"])) == len(indexes)
                # The workers log JSON lines that carry the job id.
                events = [
                    json.loads(line)
                    for line in log.read_text().splitlines()
                    if line.startswith("{")
                ]
                done = [e for e in events if e.get("event") == "transcription_completed"]
                assert [e["job_id"] for e in done] == [started["job_id"]]
                assert "lazy dog" in t["text"].lower() and "meeting notes" in t["text"].lower()
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    w.kill()


async def test_broken_input_fails_at_once_with_a_code(alice: ApiUser, settings: Settings) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    # The stored media disappears behind the service's back (a broken disk, a bad restore).
    (stored,) = [p for p in settings.media_dir.rglob("*") if p.is_file()]
    stored.unlink()
    started = await start(alice, audio["id"])
    job = await wait_for_job(alice, started["job_id"])
    assert job["status"] == "failed"
    assert job["error_code"] == "media_missing"
    assert job["attempts"] == 1  # not retried: it cannot succeed
    assert job["error_message"]
    t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
    assert t["status"] == "failed" and t["error_code"] == "media_missing"
    r = await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}/export")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "transcription_not_ready"
