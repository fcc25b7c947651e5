"""GET /metrics: protected by a bearer token, Prometheus's text format (parsed with
prometheus_client's own parser), route templates, job, transcription, ingest, download, queue,
worker and pool figures; and the separate metrics port."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FIXTURES, make_settings, register, wait_for_job
from tests.downloads.servers import MediaServer
from tests.downloads.test_downloads import download_settings, running, start_download
from verbatim.engines.process_pool import EnginePool
from verbatim.metrics.instruments import record_webhook_delivery

TOKEN = "metrics-token-" + "m" * 30


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict[Any, float]:
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(r.text)


async def test_metrics_need_the_token(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    settings = make_settings(tmp_path, database_url, metrics_token=TOKEN)
    async with running(settings, engine_pool, with_worker=False) as (client, _):
        assert (await client.get("/metrics")).status_code == 401
        r = await client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_metrics_token"
        r = await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
        assert r.status_code == 401
        # A user's access token is not the metrics token.
        alice = await register(client)
        assert (await client.get("/metrics", headers=alice.headers)).status_code == 401
        await scrape(client)
    off = make_settings(tmp_path, database_url)  # no token: the route is off
    async with running(off, engine_pool, with_worker=False) as (client, _):
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "metrics_disabled"


@pytest.mark.slow
async def test_figures_after_an_upload_and_a_transcription(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    settings = make_settings(tmp_path, database_url, metrics_token=TOKEN)
    async with running(settings, engine_pool) as (client, _):
        before = await scrape(client)
        alice = await register(client)
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        await alice.upload(FIXTURES / "speech.wav")  # a duplicate
        r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
        job = await wait_for_job(alice, r.json()["job_id"])
        assert job["status"] == "completed"
        await alice.get(f"/api/v1/audio/{audio['id']}")
        await alice.get("/api/v1/no-such-route")
        record_webhook_delivery("delivered")
        after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # HTTP by route template, never by concrete path.
    assert grew("verbatim_http_requests_total", method="POST", route="/api/v1/audio", status="201")
    assert grew("verbatim_http_requests_total", method="POST", route="/api/v1/audio", status="200")
    assert grew(
        "verbatim_http_requests_total",
        method="GET",
        route="/api/v1/audio/{audio_id}",
        status="200",
    )
    assert grew("verbatim_http_requests_total", method="GET", route="unmatched", status="404")
    assert (
        grew("verbatim_http_request_duration_seconds_count", method="POST", route="/api/v1/audio")
        == 2
    )
    assert grew(
        "verbatim_http_request_duration_seconds_bucket",
        method="POST",
        route="/api/v1/audio",
        le="+Inf",
    )
    assert not any(audio["id"] in str(labels) for _, labels in after)
    # Jobs by type and outcome; the real-time factor and audio seconds of the model.
    assert grew("verbatim_job_duration_seconds_count", type="transcription", outcome="completed")
    assert grew("verbatim_job_duration_seconds_sum", type="transcription", outcome="completed") > 0
    assert grew("verbatim_transcription_real_time_factor_count", model="tiny.en") == 1
    rtf_sum = grew("verbatim_transcription_real_time_factor_sum", model="tiny.en")
    assert 0 < rtf_sum < 5
    assert 6 < grew("verbatim_transcribed_audio_seconds_total", model="tiny.en") < 7
    size = (FIXTURES / "speech.wav").stat().st_size
    assert grew("verbatim_ingested_bytes_total", source="upload", duplicate="false") == size
    assert grew("verbatim_ingested_bytes_total", source="upload", duplicate="true") == size
    assert grew("verbatim_webhook_deliveries_total", outcome="delivered") == 1
    # Cluster figures from the database; this process's pool.
    assert value(after, "verbatim_workers_live") >= 1
    assert ("verbatim_jobs_unfinished", ()) not in after  # a labelled family, no bare sample
    assert value(after, "verbatim_db_pool_connections", state="size") == settings.database_pool_size
    assert value(after, "verbatim_db_pool_connections", state="checked_out") >= 0


@pytest.mark.slow
async def test_download_failures_by_code_and_queue_depth(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url, metrics_token=TOKEN)
    async with running(settings, engine_pool) as (client, _):
        before = await scrape(client)
        alice = await register(client)
        job = await start_download(alice, media_server.url("/media/missing.mp3"))
        done = await wait_for_job(alice, job["id"])
        assert done["error_code"] == "source_not_found"
        after = await scrape(client)
    name = "verbatim_download_failures_total"
    assert (
        value(after, name, code="source_not_found") - value(before, name, code="source_not_found")
        == 1
    )
    assert (
        value(after, "verbatim_job_failures_total", type="download", code="source_not_found")
        - value(before, "verbatim_job_failures_total", type="download", code="source_not_found")
        == 1
    )


async def test_queue_depth_counts_waiting_jobs(tmp_path: Path, database_url: str) -> None:
    """Without a worker the queued transcription waits: the queue shows it."""
    settings = make_settings(tmp_path, database_url, metrics_token=TOKEN)
    async with running(settings, with_worker=False) as (client, _):
        alice = await register(client)
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
        assert r.status_code == 202
        found = await scrape(client)
    assert value(found, "verbatim_queue_jobs", queue="transcription", status="todo") == 1
    assert value(found, "verbatim_jobs_unfinished", type="transcription", status="pending") == 1
    assert value(found, "verbatim_workers_live") == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_separate_metrics_port_without_token(tmp_path: Path, database_url: str) -> None:
    port = _free_port()
    settings = make_settings(tmp_path, database_url, metrics_port=port)
    async with running(settings, with_worker=False) as (client, _):
        r = await client.get("/metrics")
        assert r.status_code == 404  # not on the API port without a token
        async with httpx.AsyncClient() as plain:
            for _ in range(50):
                r = await plain.get(f"http://127.0.0.1:{port}/metrics")
                found = samples(r.text)
                if ("verbatim_workers_live", ()) in found:
                    break
                import asyncio

                await asyncio.sleep(0.1)
        assert r.status_code == 200
        assert ("verbatim_workers_live", ()) in found
        assert value(found, "verbatim_db_pool_connections", state="size") > 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
