"""Several processes: a `verbatim worker` in its own process serves its own figures on its
metrics port (the jobs it ran), while the API process reports the cluster gauges (live workers
from the database) and its own HTTP figures: per-process endpoints, summed by Prometheus."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, make_settings, register, wait_for_job
from tests.downloads.test_downloads import running
from tests.metrics.test_metrics import TOKEN, _free_port, samples, scrape, value

VERBATIM = str(Path(sys.executable).with_name("verbatim"))


@pytest.mark.slow
async def test_a_worker_process_serves_its_own_metrics(tmp_path: Path, database_url: str) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "VERBATIM_ENV": "test",
        "VERBATIM_DATA_DIR": str(tmp_path / "data"),
        "VERBATIM_DATABASE_URL": database_url,
        "VERBATIM_AUTO_MIGRATE": "false",
        "VERBATIM_SECRET_KEY": "test-secret-" + "x" * 40,
        "VERBATIM_LOG_JSON": "false",
        "VERBATIM_METRICS_PORT": str(port),
        "VERBATIM_WORKER_HEARTBEAT_S": "1",
    }
    worker = subprocess.Popen(
        [VERBATIM, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        settings = make_settings(tmp_path, database_url, metrics_token=TOKEN)
        async with running(settings, with_worker=False) as (client, _):
            api_before = await scrape(client)
            alice = await register(client)
            audio = (await alice.upload(FIXTURES / "speech.wav")).json()
            r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
            job = await wait_for_job(alice, r.json()["job_id"], timeout=120)
            assert job["status"] == "completed", job
            api_after = await scrape(client)
            async with httpx.AsyncClient() as plain:
                r = await plain.get(f"http://127.0.0.1:{port}/metrics")
            assert r.status_code == 200
            in_worker = samples(r.text)
        name = "verbatim_job_duration_seconds_count"
        labels = {"type": "transcription", "outcome": "completed"}
        # The worker ran the job and counts it; the API process did not run it.
        assert value(in_worker, name, **labels) == 1
        assert value(in_worker, "verbatim_transcription_real_time_factor_count", model="tiny.en")
        assert value(api_after, name, **labels) == value(api_before, name, **labels)
        # The API process counted the upload; the worker saw no HTTP request.
        assert not any(n == "verbatim_http_requests_total" for n, _ in in_worker)
        # Cluster gauges come from the database: the worker process's three loops are live
        # (local transcriptions, cloud transcriptions, the default queue).
        assert value(api_after, "verbatim_workers_live") == 3
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    await asyncio.sleep(0)
