"""Shared steps of the reprocess tests: a real transcription by the real model, and waits."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from sqlalchemy import select

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from tests.s3 import object_keys, read_object
from verbatim.config import Settings
from verbatim.models import Job, JobStatus, JobType
from verbatim.models.job import TERMINAL
from verbatim.services import get_services


async def transcribe(user: ApiUser, name: str = "speech.wav", **body: Any) -> dict[str, Any]:
    """Upload a fixture and transcribe it with the real model; the completed transcription."""
    r = await user.upload(FIXTURES / name)
    assert r.status_code in (200, 201), r.text  # 200: the same file, already uploaded
    audio = r.json()
    r = await user.post(f"/api/v1/audio/{audio['id']}/transcriptions", json=body)
    assert r.status_code == 202, r.text
    job = await wait_for_job(user, r.json()["job_id"], timeout=120)
    assert job["status"] == "completed", job
    t = (await user.get(f"/api/v1/transcriptions/{r.json()['transcription_id']}")).json()
    assert t["status"] == "completed"
    return {**t, "audio": audio}


async def me(user: ApiUser) -> dict[str, Any]:
    r = await user.get("/api/v1/auth/me")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


async def wait_for_index(transcription_id: str, timeout: float = 60) -> None:
    """Until every search.index job of the transcription has finished (completed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with get_services().sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Job.status).where(
                        Job.transcription_id == uuid.UUID(transcription_id),
                        Job.type == JobType.search_index,
                    )
                )
            ).all()
        if rows and all(status in TERMINAL for (status,) in rows):
            assert all(status is JobStatus.completed for (status,) in rows), rows
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the search index job did not finish")


async def jobs_of(transcription_id: str, job_type: JobType) -> list[Job]:
    async with get_services().sessionmaker() as session:
        return list(
            await session.scalars(
                select(Job).where(
                    Job.transcription_id == uuid.UUID(transcription_id), Job.type == job_type
                )
            )
        )


async def stored_raw(
    settings: Settings, tenant_id: str, transcription_id: str, version: int, timeout: float = 30
) -> dict[str, Any]:
    """The stored raw_transcript.json once it describes `version`: the job writes the files
    just after its completion committed, so a client may see the job completed a moment
    before the files are there."""
    key = f"{tenant_id}/{transcription_id}/raw_transcript.json"
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        if key in object_keys(settings, f"{tenant_id}/"):
            seen = json.loads(read_object(settings, key))
            if seen["version"] == version:
                return dict(seen)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no stored raw file of version {version}: {seen and seen['version']}")
