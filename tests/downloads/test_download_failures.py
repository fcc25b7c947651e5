"""A download that hits an unexpected error after fetching ends failed, never stuck running."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import register, wait_for_job
from tests.downloads.servers import MediaServer
from tests.downloads.test_downloads import download_settings, running, start_download
from verbatim.engines.process_pool import EnginePool
from verbatim.models import AudioFile, Job, JobStatus


@pytest.mark.slow
async def test_an_os_error_during_ingest_fails_the_job(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url)
    async with running(settings, engine_pool) as (client, services):
        alice = await register(client)
        # The media folder cannot take the file: a plain file stands where its folder goes
        # (as a full or read-only disk would refuse it).
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        (settings.media_dir / "uploads").write_text("not a folder")
        job = await wait_for_job(
            alice, (await start_download(alice, media_server.url("/media/speech.wav")))["id"]
        )
        assert job["status"] == "failed", job
        assert job["error_code"] == "internal_error"
        assert job["attempts"] == 1
        async with services.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(AudioFile)) == 0
            running_jobs = await session.scalar(
                select(func.count()).select_from(Job).where(Job.status == JobStatus.running)
            )
        assert running_jobs == 0
        # The download's temporary folder is gone too.
        assert not any(settings.tmp_dir.glob("download-*"))
