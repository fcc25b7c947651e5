"""Downloads through the API and the worker: real PostgreSQL, real yt-dlp in its own process,
local sites. The allow-list holds only 127.0.0.2 (the "public" site); 127.0.0.1 plays the
internal network."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update

from tests.conftest import FIXTURES, ApiUser, make_settings, register, wait_for_job
from tests.downloads.servers import MediaServer
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.engines.process_pool import EnginePool
from verbatim.models import AudioFile, Job
from verbatim.services import Services

ALLOWED = ["127.0.0.2/32"]


@asynccontextmanager
async def running(
    settings: Settings, engine_pool: EnginePool | None = None, *, with_worker: bool = True
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    app = create_app(settings, with_worker=with_worker, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://verbatim.test", timeout=60
        ) as client:
            yield client, app.state.services


def download_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"download_allow_networks": ALLOWED}
    values.update(overrides)
    return make_settings(tmp_path, database_url, **values)


async def start_download(user: ApiUser, url: str, **body: Any) -> dict[str, Any]:
    r = await user.post("/api/v1/audio/downloads", json={"url": url, **body})
    assert r.status_code == 202, r.text
    job: dict[str, Any] = r.json()
    assert r.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert job["type"] == "download" and job["status"] == "pending"
    assert job["detail"]["url"] == url
    return job


async def stored(services: Services) -> tuple[int, int, list[Path]]:
    """(audio rows, job rows, files under media_dir), for every user."""
    async with services.sessionmaker() as session:
        audio = await session.scalar(select(func.count()).select_from(AudioFile))
        jobs = await session.scalar(select(func.count()).select_from(Job))
    files = [p for p in services.settings.media_dir.rglob("*") if p.is_file()]
    return audio or 0, jobs or 0, files


async def wait_tmp_empty(settings: Settings, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not settings.tmp_dir.exists() or not any(settings.tmp_dir.iterdir()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"left in tmp_dir: {list(settings.tmp_dir.iterdir())}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
async def test_downloads_direct_files_pages_and_redirects(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url)
    cases = {
        media_server.url("/media/speech.wav"): "speech.wav",
        media_server.url("/media/speech.mp3"): "speech.mp3",
        media_server.url("/media/speech.ogg"): "speech.ogg",
        media_server.url("/media/speech.m4a"): "speech.m4a",
        media_server.url("/page/speech.mp4"): "speech.mp4",  # <video src=...> in a page
        media_server.url("/chain/3/speech.flac"): "speech.flac",  # three redirects
    }
    async with running(settings, engine_pool) as (client, _):
        alice = await register(client)
        jobs = {url: await start_download(alice, url) for url in cases}
        for url, name in cases.items():
            job = await wait_for_job(alice, jobs[url]["id"])
            assert job["status"] == "completed", job
            assert job["progress"] == 100.0 and job["stage"] == "completed"
            size = (FIXTURES / name).stat().st_size
            assert job["detail"]["downloaded_bytes"] == size
            assert job["detail"]["is_duplicate"] is False
            audio = (await alice.get(f"/api/v1/audio/{job['audio_file_id']}")).json()
            assert audio["source_type"] == "download"
            assert audio["source_url"] == url
            assert audio["platform"] == "generic"
            assert audio["title"]
            assert audio["sha256"] == sha256(FIXTURES / name)
            assert audio["size_bytes"] == size and audio["duration"] > 5
            content = await alice.get(f"/api/v1/audio/{audio['id']}/content")
            assert content.content == (FIXTURES / name).read_bytes()
        page_audio = (await alice.get("/api/v1/audio", params={"source_type": "download"})).json()
        assert page_audio["total"] == len(cases)
        titles = {a["source_url"]: a["title"] for a in page_audio["items"]}
        assert titles[media_server.url("/page/speech.mp4")].startswith("A talk about speech.mp4")
        # Stored the way an upload is: under the user's folder, named by checksum.
        files = [p for p in settings.media_dir.rglob("*") if p.is_file()]
        assert len(files) == len(cases)
        assert all("/uploads/user_" in str(p) for p in files)
        await wait_tmp_empty(settings)


@pytest.mark.slow
async def test_downloads_take_the_upload_storage_path(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    """Storage settings apply to downloads as to uploads: lossless media kept as Opus here."""
    settings = download_settings(tmp_path, database_url, store_transcoded="opus")
    async with running(settings, engine_pool) as (client, _):
        alice = await register(client)
        wav = await wait_for_job(
            alice, (await start_download(alice, media_server.url("/media/speech.wav")))["id"]
        )
        mp3 = await wait_for_job(
            alice, (await start_download(alice, media_server.url("/media/speech.mp3")))["id"]
        )
        stored_wav = (await alice.get(f"/api/v1/audio/{wav['audio_file_id']}")).json()
        stored_mp3 = (await alice.get(f"/api/v1/audio/{mp3['audio_file_id']}")).json()
        # The record describes what was downloaded; lossless media is kept as Opus.
        assert stored_wav["sha256"] == sha256(FIXTURES / "speech.wav")
        assert stored_wav["stored_mime_type"] == "audio/ogg; codecs=opus"
        assert stored_mp3["stored_mime_type"] is None
        files = sorted(p for p in settings.media_dir.rglob("*") if p.is_file())
        assert len(files) == 2
        (mp3_file,) = [p for p in files if p.name.endswith(".mp3")]
        assert mp3_file.read_bytes() == (FIXTURES / "speech.mp3").read_bytes()
        await wait_tmp_empty(settings)


@pytest.mark.slow
async def test_progress_is_visible_while_downloading(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url)
    name = "speech_stereo.wav"
    size = (FIXTURES / name).stat().st_size
    async with running(settings, engine_pool) as (client, _):
        alice = await register(client)
        job = await start_download(alice, media_server.url(f"/slow-media/{name}?bps=200000"))
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            current = (await alice.get(f"/api/v1/jobs/{job['id']}")).json()
            if current["status"] != "running":
                if current["status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.1)
                continue
            seen.append(current)
            await asyncio.sleep(0.3)
        partial = [j for j in seen if 0 < j["progress"] < 100]
        assert partial, seen
        assert all(j["detail"]["total_bytes"] == size for j in partial)
        assert all(0 < j["detail"]["downloaded_bytes"] < size for j in partial)
        assert all(j["stage"] == "downloading" for j in partial)
        final = await wait_for_job(alice, job["id"])
        assert final["status"] == "completed" and final["detail"]["downloaded_bytes"] == size


@pytest.mark.slow
async def test_same_media_is_deduplicated(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url)
    async with running(settings, engine_pool) as (client, services):
        alice = await register(client)
        uploaded = (await alice.upload(FIXTURES / "speech.ogg")).json()
        first = await wait_for_job(
            alice, (await start_download(alice, media_server.url("/media/speech.ogg")))["id"]
        )
        assert first["status"] == "completed"
        assert first["audio_file_id"] == uploaded["id"]
        assert first["detail"]["is_duplicate"] is True
        # A download first, then the same bytes from another link: the first record is kept.
        mp3 = await wait_for_job(
            alice, (await start_download(alice, media_server.url("/media/speech.mp3")))["id"]
        )
        again = await wait_for_job(
            alice, (await start_download(alice, media_server.url("/chain/2/speech.mp3")))["id"]
        )
        assert again["audio_file_id"] == mp3["audio_file_id"]
        assert (mp3["detail"]["is_duplicate"], again["detail"]["is_duplicate"]) == (False, True)
        audio = (await alice.get(f"/api/v1/audio/{uploaded['id']}")).json()
        assert audio["source_type"] == "upload"  # the existing record is not rewritten
        audio_rows, _, files = await stored(services)
        assert audio_rows == 2 and len(files) == 2
        # Another user downloading the same media gets a copy of their own.
        bob = await register(client)
        theirs = await wait_for_job(
            bob, (await start_download(bob, media_server.url("/media/speech.ogg")))["id"]
        )
        assert theirs["audio_file_id"] != uploaded["id"]
        assert theirs["detail"]["is_duplicate"] is False
        await wait_tmp_empty(settings)


@pytest.mark.slow
async def test_a_server_error_is_retried(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url)
    async with running(settings, engine_pool) as (client, _):
        alice = await register(client)
        url = media_server.url("/flaky/speech.mp3?fail=1")  # one 503, then the file
        job = await wait_for_job(alice, (await start_download(alice, url))["id"])
        assert job["status"] == "completed", job
        assert job["attempts"] == 2
        assert job["error_code"] is None and job["audio_file_id"]
        await wait_tmp_empty(settings)


@pytest.mark.slow
async def test_another_user_gets_404_for_the_job_and_the_audio(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url)
    async with running(settings, engine_pool) as (client, _):
        alice = await register(client)
        bob = await register(client)
        job = await wait_for_job(
            alice, (await start_download(alice, media_server.url("/media/speech.wav")))["id"]
        )
        audio_id = job["audio_file_id"]
        r = await bob.get(f"/api/v1/jobs/{job['id']}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
        r = await bob.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
        for path in (f"/api/v1/audio/{audio_id}", f"/api/v1/audio/{audio_id}/content"):
            r = await bob.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "audio_not_found"
        r = await bob.post(f"/api/v1/audio/{audio_id}/transcriptions", json={})
        assert r.status_code == 404
        assert (await bob.get("/api/v1/jobs")).json()["total"] == 0
        assert (await bob.get("/api/v1/audio")).json()["total"] == 0
        assert (await alice.get(f"/api/v1/audio/{audio_id}")).status_code == 200


async def test_bad_requests_are_refused_and_store_nothing(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, blocked_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url)
    port = blocked_server.port
    bad: list[tuple[dict[str, Any], str]] = [
        ({"url": "ftp://example.com/a.mp3"}, "unsupported_url"),
        ({"url": "file:///etc/passwd"}, "unsupported_url"),
        ({"url": "data:audio/wav;base64,UklGRg=="}, "unsupported_url"),
        ({"url": "javascript:alert(1)"}, "unsupported_url"),
        ({"url": "example.com/a.mp3"}, "unsupported_url"),
        ({"url": "http://user:secret@example.com/a.mp3"}, "invalid_url"),
        ({"url": "http:///a.mp3"}, "invalid_url"),
        ({"url": "http://exa mple.com/a.mp3"}, "invalid_url"),
        ({"url": f"http://127.0.0.1:{port}/media/speech.mp3"}, "blocked_destination"),
        ({"url": f"http://2130706433:{port}/media/speech.mp3"}, "blocked_destination"),
        ({"url": f"http://0x7f000001:{port}/media/speech.mp3"}, "blocked_destination"),
        ({"url": f"http://0177.0.0.1:{port}/media/speech.mp3"}, "blocked_destination"),
        ({"url": f"http://[::ffff:127.0.0.1]:{port}/media/speech.mp3"}, "blocked_destination"),
        ({"url": f"http://[::1]:{port}/"}, "blocked_destination"),
        ({"url": f"http://localhost:{port}/media/speech.mp3"}, "blocked_destination"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "blocked_destination"),
        ({"url": "http://[fd00:ec2::254]/latest/meta-data/"}, "blocked_destination"),
        ({"url": "http://10.0.0.1/a.mp3"}, "blocked_destination"),
        ({"url": ""}, "validation_error"),
        ({"url": "https://example.com/" + "a" * 3000}, "validation_error"),
        ({}, "validation_error"),
        ({"url": 42}, "validation_error"),
        ({"url": "https://example.com/a.mp3", "format": "best"}, "validation_error"),
        ({"url": "https://example.com/a.mp3", "transcribe": {"beam_size": 99}}, "validation_error"),
        (
            {"url": "https://example.com/a.mp3", "transcribe": {"model": "nope"}},
            "model_unavailable",
        ),
        (
            {"url": "https://example.com/a.mp3", "transcribe": {"language": "de"}},
            "language_unsupported",
        ),
        ({"url": "https://example.com/a.mp3", "transcribe": {"engine": "x"}}, "engine_unavailable"),
    ]
    async with running(settings, engine_pool) as (client, services):
        alice = await register(client)
        for body, code in bad:
            r = await alice.post("/api/v1/audio/downloads", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["code"] == code, (body, r.json())
        r = await client.post("/api/v1/audio/downloads", json={"url": "https://example.com/a"})
        assert r.status_code == 401
        r = await alice.post("/api/v1/audio/downloads", content=b"not json")
        assert r.status_code == 422
        assert await stored(services) == (0, 0, [])
        assert blocked_server.hits == []


@pytest.mark.slow
async def test_failures_end_with_a_code_and_store_nothing(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    media_server: MediaServer,
    blocked_server: MediaServer,
    blocked_name: tuple[str, MediaServer],
) -> None:
    settings = download_settings(
        tmp_path,
        database_url,
        download_max_bytes=400_000,  # the stereo fixture (1 MB) is over, the others under
        download_max_duration_s=4,  # the speech fixtures last 6 s
        download_timeout_s=20,  # generous: four downloads start at once on a busy machine
        download_rate_per_hour=100,
        max_running_per_user=20,
    )
    name, named_server = blocked_name
    internal = blocked_server.url("/media/speech.wav")
    page_with_internal_audio = (
        f'<html><head><title>t</title></head><body><audio src="{internal}"></audio></body></html>'
    )
    expected = {
        media_server.url("/media/missing.mp3"): "source_not_found",
        media_server.url("/nomedia"): "unsupported_url",
        media_server.url("/media/random.bin"): "no_audio_stream",
        media_server.url("/media/image.wav"): "no_audio_stream",
        media_server.url("/huge"): "file_too_large",
        media_server.url("/media/speech_stereo.wav"): "file_too_large",
        media_server.url("/slow"): "download_timeout",
        media_server.url("/media/speech.wav"): "media_too_long",
        media_server.url(f"/redirect?to={internal}"): "blocked_destination",
        media_server.url(f"/redirect?to={internal}&code=307"): "blocked_destination",
        media_server.page_url(page_with_internal_audio): "blocked_destination",
        named_server.url("/media/speech.wav", host=name): "blocked_destination",
    }
    async with running(settings, engine_pool) as (client, services):
        alice = await register(client)
        jobs = {url: await start_download(alice, url) for url in expected}
        for url, code in expected.items():
            job = await wait_for_job(alice, jobs[url]["id"])
            assert (job["status"], job["error_code"]) == ("failed", code), (url, job)
            assert job["error_message"]
            assert job["attempts"] == 1  # permanent failures are not retried
            assert job["audio_file_id"] is None and job["finished_at"]
        audio_rows, job_rows, files = await stored(services)
        assert (audio_rows, job_rows, files) == (0, len(expected), [])
        await wait_tmp_empty(settings)
    assert blocked_server.hits == [] and named_server.hits == []


@pytest.mark.slow
async def test_with_an_empty_allow_list_every_local_address_is_refused(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    media_server: MediaServer,
    blocked_name: tuple[str, MediaServer],
) -> None:
    settings = make_settings(tmp_path, database_url)  # the default: no allow-list
    assert settings.download_allow_networks == []
    name, named_server = blocked_name
    async with running(settings, engine_pool) as (client, services):
        alice = await register(client)
        for url in (
            media_server.url("/media/speech.mp3"),
            media_server.url("/media/speech.mp3", host="localhost"),
            media_server.url("/media/speech.mp3", host="2130706434"),  # 127.0.0.2
        ):
            r = await alice.post("/api/v1/audio/downloads", json={"url": url})
            assert r.status_code == 422 and r.json()["error"]["code"] == "blocked_destination"
        # A name is only known to be internal once resolved: in the download process.
        job = await start_download(alice, named_server.url("/media/speech.mp3", host=name))
        job = await wait_for_job(alice, job["id"])
        assert (job["status"], job["error_code"]) == ("failed", "blocked_destination")
        audio_rows, job_rows, files = await stored(services)
        assert (audio_rows, job_rows, files) == (0, 1, [])
        await wait_tmp_empty(settings)
    assert media_server.hits == [] and named_server.hits == []


@pytest.mark.slow
async def test_rate_limit_is_counted_in_the_database(
    tmp_path: Path, database_url: str, media_server: MediaServer
) -> None:
    """Two API processes on one database share each user's count (no worker: jobs wait)."""
    settings = download_settings(tmp_path, database_url, download_rate_per_hour=2)
    url = media_server.url("/media/speech.mp3")
    async with (
        running(settings, with_worker=False) as (first, first_services),
        running(settings, with_worker=False) as (second, _),
    ):
        alice = await register(first)
        alice_elsewhere = ApiUser(second, alice.email, alice.headers["Authorization"][7:])
        await start_download(alice, url)
        await start_download(alice_elsewhere, url)
        r = await alice.post("/api/v1/audio/downloads", json={"url": url})
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "rate_limited"
        assert 3590 <= int(r.headers["retry-after"]) <= 3600
        assert r.json()["error"]["details"]["retry_after_s"] == int(r.headers["retry-after"])
        r = await alice_elsewhere.post("/api/v1/audio/downloads", json={"url": url})
        assert r.status_code == 429
        assert (await alice.get("/api/v1/jobs")).json()["total"] == 2  # refusals store nothing
        # Another user has a count of their own.
        bob = await register(second)
        await start_download(bob, url)

        alice_id = uuid.UUID((await alice.get("/api/v1/auth/me")).json()["id"])

        async def age_jobs(*minutes: int) -> None:
            """Move Alice's download jobs back in time, oldest first."""
            async with first_services.sessionmaker() as session:
                ids = await session.scalars(
                    select(Job.id)
                    .where(Job.type == "download", Job.user_id == alice_id)
                    .order_by(Job.created_at)
                )
                for job_id, age in zip(list(ids), minutes, strict=True):
                    await session.execute(
                        update(Job)
                        .where(Job.id == job_id)
                        .values(created_at=func.now() - timedelta(minutes=age))
                    )
                await session.commit()

        # The window slides: the oldest job leaves it in about a minute.
        await age_jobs(59, 30)
        r = await alice_elsewhere.post("/api/v1/audio/downloads", json={"url": url})
        assert r.status_code == 429
        assert 55 <= int(r.headers["retry-after"]) <= 61
        await age_jobs(61, 30)
        await start_download(alice_elsewhere, url)


@pytest.mark.slow
async def test_download_then_transcribe(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url)
    async with running(settings, engine_pool) as (client, _):
        alice = await register(client)
        started = await start_download(
            alice, media_server.url("/page/speech.mp3"), transcribe={"language": "en"}
        )
        job = await wait_for_job(alice, started["id"])
        assert job["status"] == "completed", job
        follow_up_id = job["detail"]["transcription_job_id"]
        listed = (await alice.get("/api/v1/jobs")).json()
        # (a search.index job joins them once the transcription completes)
        assert {(j["type"], j["id"]) for j in listed["items"] if j["type"] != "search_index"} == {
            ("download", job["id"]),
            ("transcription", follow_up_id),
        }
        follow_up = await wait_for_job(alice, follow_up_id)
        assert follow_up["status"] == "completed", follow_up
        assert follow_up["audio_file_id"] == job["audio_file_id"]
        assert follow_up["transcription_id"] == job["transcription_id"]
        transcription = (
            await alice.get(f"/api/v1/transcriptions/{follow_up['transcription_id']}")
        ).json()
        assert transcription["requested_language"] == "en"
        assert "fox" in transcription["text"].lower()


@pytest.mark.slow
async def test_cancelling_a_download_stops_it(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, media_server: MediaServer
) -> None:
    settings = download_settings(tmp_path, database_url, download_timeout_s=120)
    async with running(settings, engine_pool) as (client, services):
        alice = await register(client)
        job = await start_download(alice, media_server.url("/trickle"))
        deadline = time.monotonic() + 30
        while (await alice.get(f"/api/v1/jobs/{job['id']}")).json()["status"] != "running":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        r = await alice.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        # The worker notices within a second or two, kills the download and cleans up.
        await wait_tmp_empty(settings)
        await asyncio.sleep(1.5)
        job = (await alice.get(f"/api/v1/jobs/{job['id']}")).json()
        assert job["status"] == "cancelled" and job["audio_file_id"] is None
        assert await stored(services) == (0, 1, [])


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_settings_refuse_a_meaningless_rate(tmp_path: Path, limit: str) -> None:
    with pytest.raises(ValueError):
        make_settings(tmp_path, "postgresql://x", download_rate_per_hour=int(limit))
