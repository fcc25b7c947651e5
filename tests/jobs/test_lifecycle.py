"""The one job lifecycle: every way a job's work can end leaves its row finished, never running.

A scripted job type (a JobKind of a few lines, as any new job type is) drives the lifecycle
through the real queue, worker and database.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import structlog.testing
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import ApiUser, make_settings, register, wait_for_job
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.engines.process_pool import EngineConfig, EngineProcess
from verbatim.jobs import reconcile
from verbatim.jobs.lifecycle import (
    JobContext,
    JobFailed,
    JobKind,
    JobTask,
    TransientJobError,
    retry_delay,
)
from verbatim.jobs.service import defer
from verbatim.models import (
    AudioFile,
    Job,
    JobStatus,
    JobType,
    Transcription,
    TranscriptionStatus,
    User,
)
from verbatim.queue import DEFAULT_QUEUE
from verbatim.services import Services, get_services

# Each test starts the service with its in-process worker and waits for jobs: seconds each.
pytestmark = pytest.mark.slow


class ScriptedJob(JobKind[dict[str, Any], str]):
    """Does what its payload says: fail in some way on the first attempts, then succeed."""

    type = JobType.download
    stage = "scripted"

    async def claim(self, session: AsyncSession, job: Job) -> dict[str, Any]:
        if job.payload.get("script") == "refuse":
            raise JobFailed("refused", "the input cannot work")
        return dict(job.payload)

    async def work(self, ctx: JobContext, inputs: dict[str, Any]) -> str:
        script = inputs["script"]
        failing = ctx.attempts <= int(inputs.get("fail_times", 1_000_000))
        if script == "bug":
            raise RuntimeError("a bug nobody expected")
        if script == "oserror":
            raise OSError(28, "No space left on device")
        if script == "transient" and failing:
            raise TransientJobError("flaky", f"attempt {ctx.attempts} failed")
        if script == "reset" and failing:
            raise ConnectionResetError("connection reset by peer")
        if script == "slow":
            for i in range(600):
                await ctx.progress(i / 6, force=True)
                await asyncio.sleep(0.05)
        return f"done on attempt {ctx.attempts}"

    async def complete(
        self, ctx: JobContext, session: AsyncSession, job: Job, inputs: dict[str, Any], result: str
    ) -> None:
        job.update_detail(result=result)


scripted = JobTask(ScriptedJob(), name="tests.scripted", queue_name=DEFAULT_QUEUE)
# A queue no worker listens to: its jobs stay queued ("todo").
idle = JobTask(ScriptedJob(), name="tests.idle", queue_name="tests-idle")


def fast_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "job_retry_base_s": 0.01,
        "job_retry_max_s": 0.05,
        "worker_poll_s": 0.2,
    }
    values.update(overrides)
    return make_settings(tmp_path, database_url, **values)


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[tuple[ApiUser, Services]]:
    app = create_app(settings, with_worker=True)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
            yield await register(c), get_services()


async def queue_job(
    services: Services, email: str, payload: dict[str, Any], task: JobTask = scripted, **row: Any
) -> str:
    async with services.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        job = Job(
            user_id=user.id, tenant_id=user.tenant_id, type=JobType.download, payload=payload, **row
        )
        session.add(job)
        await session.flush()
        await defer(session, job, task.task)
        await session.commit()
        return str(job.id)


async def test_an_unexpected_exception_fails_the_job_with_internal_error(
    tmp_path: Path, database_url: str
) -> None:
    async with service(fast_settings(tmp_path, database_url)) as (user, services):
        with structlog.testing.capture_logs() as events:
            ids = [await queue_job(services, user.email, {"script": s}) for s in ("bug", "oserror")]
            for job_id in ids:
                job = await wait_for_job(user, job_id, timeout=30)
                assert job["status"] == "failed", job
                assert job["error_code"] == "internal_error"
                assert "bug" not in job["error_message"]  # no internals shown to the user
                assert job["finished_at"] and job["stage"] == "failed"
        # Logged once per job, as an error with its traceback (exc_info), carrying the job id.
        logged = [e for e in events if e["event"] == "job_internal_error"]
        assert len(logged) == 2
        assert all(e["log_level"] == "error" and e["exc_info"] is True for e in logged)
        async with services.sessionmaker() as session:
            running = await session.scalar(
                select(func.count()).select_from(Job).where(Job.status == JobStatus.running)
            )
        assert running == 0


async def test_many_failing_jobs_never_block_the_user(tmp_path: Path, database_url: str) -> None:
    # Three stuck rows used to hold every slot of VERBATIM_MAX_RUNNING_PER_USER forever.
    settings = fast_settings(tmp_path, database_url, max_running_per_user=2)
    async with service(settings) as (user, services):
        for _ in range(3):
            failed = await queue_job(services, user.email, {"script": "bug"})
            assert (await wait_for_job(user, failed, timeout=30))["status"] == "failed"
        ok = await queue_job(services, user.email, {"script": "ok"})
        job = await wait_for_job(user, ok, timeout=30)
        assert job["status"] == "completed" and job["detail"]["result"] == "done on attempt 1"


async def test_attempts_follow_the_one_setting_even_above_eight(
    tmp_path: Path, database_url: str
) -> None:
    # max_attempts=8 was hard-coded in the task decorators: a job allowed 10 stayed pending.
    settings = fast_settings(tmp_path, database_url, job_max_attempts=10)
    async with service(settings) as (user, services):
        always = await queue_job(services, user.email, {"script": "transient"})
        job = await wait_for_job(user, always, timeout=60)
        assert job["status"] == "failed", job
        assert job["attempts"] == 10
        assert job["error_code"] == "flaky" and job["error_message"] == "attempt 10 failed"

        recovers = await queue_job(services, user.email, {"script": "transient", "fail_times": 9})
        job = await wait_for_job(user, recovers, timeout=60)
        assert job["status"] == "completed", job
        assert job["attempts"] == 10 and job["error_code"] is None


async def test_a_connection_error_is_transient_for_every_job_type(
    tmp_path: Path, database_url: str
) -> None:
    async with service(fast_settings(tmp_path, database_url)) as (user, services):
        job_id = await queue_job(services, user.email, {"script": "reset", "fail_times": 1})
        job = await wait_for_job(user, job_id, timeout=30)
        assert job["status"] == "completed", job
        assert job["attempts"] == 2


async def test_a_refused_input_fails_at_once(tmp_path: Path, database_url: str) -> None:
    async with service(fast_settings(tmp_path, database_url)) as (user, services):
        job_id = await queue_job(services, user.email, {"script": "refuse"})
        job = await wait_for_job(user, job_id, timeout=30)
        assert job["status"] == "failed" and job["error_code"] == "refused"
        assert job["attempts"] == 1


async def test_a_rerun_with_no_attempt_left_fails_with_the_last_error(
    tmp_path: Path, database_url: str
) -> None:
    # A job whose worker died on its last attempt is picked up again as a stalled job.
    settings = fast_settings(tmp_path, database_url, job_max_attempts=3)
    async with service(settings) as (user, services):
        job_id = await queue_job(
            services,
            user.email,
            {"script": "ok"},
            status=JobStatus.running,
            attempts=3,
            error_code="engine_crashed",
            error_message="the engine process exited unexpectedly",
        )
        job = await wait_for_job(user, job_id, timeout=30)
        assert job["status"] == "failed" and job["error_code"] == "engine_crashed"
        assert job["attempts"] == 3


async def test_cancelling_stops_the_work_at_its_next_progress_report(
    tmp_path: Path, database_url: str
) -> None:
    async with service(fast_settings(tmp_path, database_url)) as (user, services):
        job_id = await queue_job(services, user.email, {"script": "slow"})
        deadline = time.monotonic() + 30
        while (await user.get(f"/api/v1/jobs/{job_id}")).json()["progress"] <= 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        r = await user.post(f"/api/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        await asyncio.sleep(1.0)
        job = (await user.get(f"/api/v1/jobs/{job_id}")).json()
        assert job["status"] == "cancelled" and "result" not in job["detail"]


async def test_the_reconciler_fails_rows_whose_queue_job_ended_or_vanished(
    tmp_path: Path, database_url: str
) -> None:
    async with service(fast_settings(tmp_path, database_url)) as (user, services):
        queued = await queue_job(services, user.email, {"script": "ok"}, task=idle)
        failed_in_queue = await queue_job(services, user.email, {"script": "ok"}, task=idle)
        vanished = await queue_job(services, user.email, {"script": "ok"}, task=idle)
        async with services.sessionmaker() as session:
            # A transcription row, so the job type's own rows are failed too.
            owner = await session.scalar(select(User).where(User.email == user.email))
            assert owner is not None
            audio = AudioFile(
                user_id=owner.id,
                tenant_id=owner.tenant_id,
                storage_key="uploads/x",
                original_filename="x.wav",
                size_bytes=1,
                mime_type="audio/wav",
                container="wav",
                codec="pcm_s16le",
                sha256="0" * 64,
            )
            session.add(audio)
            await session.flush()
            transcription = Transcription(
                user_id=owner.id,
                tenant_id=owner.tenant_id,
                audio_file_id=audio.id,
                engine="faster-whisper",
                model_name="tiny.en",
                status=TranscriptionStatus.running,
            )
            session.add(transcription)
            await session.flush()
            running_lost = Job(
                user_id=owner.id,
                tenant_id=owner.tenant_id,
                type=JobType.transcription,
                status=JobStatus.running,
                transcription_id=transcription.id,
                audio_file_id=audio.id,
                queue_job_id=None,
                payload={},
            )
            session.add(running_lost)
            await session.flush()
            running_lost_id = str(running_lost.id)
            await session.execute(
                text(
                    "UPDATE procrastinate_jobs SET status = 'failed' WHERE id = "
                    "(SELECT queue_job_id FROM job WHERE id = :id)"
                ),
                {"id": uuid.UUID(failed_in_queue)},
            )
            await session.execute(
                text(
                    "DELETE FROM procrastinate_jobs WHERE id = "
                    "(SELECT queue_job_id FROM job WHERE id = :id)"
                ),
                {"id": uuid.UUID(vanished)},
            )
            await session.commit()
        # Rows just written are left alone (their transaction may only just have committed).
        assert await reconcile.fail_orphaned_jobs(services) == 0
        assert await reconcile.fail_orphaned_jobs(services, grace_s=0) == 3

        for job_id in (failed_in_queue, vanished, running_lost_id):
            job = (await user.get(f"/api/v1/jobs/{job_id}")).json()
            assert job["status"] == "failed" and job["error_code"] == "job_lost", job
            assert job["finished_at"]
        assert (await user.get(f"/api/v1/jobs/{queued}")).json()["status"] == "pending"
        async with services.sessionmaker() as session:
            row = await session.get(Transcription, transcription.id)
            assert row is not None and row.status is TranscriptionStatus.failed
            assert row.error_code == "job_lost"
        # Nothing left to do the second time.
        assert await reconcile.fail_orphaned_jobs(services, grace_s=0) == 0


def test_retry_delays_grow_and_are_capped() -> None:
    delays = [retry_delay(n, 2.0, 300.0) for n in range(1, 12)]
    assert 1.0 <= delays[0] <= 2.0
    assert 4.0 <= delays[2] <= 8.0
    assert all(150.0 <= d <= 300.0 for d in delays[-3:])


async def test_killing_an_engine_process_never_waits_on_the_event_loop() -> None:
    proc = EngineProcess(EngineConfig(), None)
    await proc.wait_ready()
    joined = threading.Event()
    original_join = proc.join

    def slow_join(timeout: float = 5.0) -> None:
        time.sleep(1.0)  # as when the kernel is slow to reap a large process
        original_join(timeout)
        joined.set()

    proc.join = slow_join  # type: ignore[method-assign]
    started = time.monotonic()
    proc.kill()
    assert time.monotonic() - started < 0.2
    assert await asyncio.to_thread(joined.wait, 10)
    assert not proc.alive()
