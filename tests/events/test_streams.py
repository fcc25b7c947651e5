"""Live job events over server-sent events, through a real HTTP server: a job's stream follows
a worker running in another process, resumes with Last-Event-ID, sends heartbeats, shows a user
nothing of another's jobs, and frees the listening connection when the last client leaves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import FIXTURES, long_speech, make_settings
from tests.live import Sse, live_server, spawn_worker, sse_events, stop_worker

LISTENERS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND query LIKE 'LISTEN verbatim_job_events%%'"
)


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    password = "correct horse battery"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def upload(client: httpx.AsyncClient, headers: dict[str, str], path: Path) -> str:
    with path.open("rb") as fh:
        r = await client.post(
            "/api/v1/audio", headers=headers, files={"file": (path.name, fh, "audio/wav")}
        )
    assert r.status_code in (200, 201), r.text
    audio_id: str = r.json()["id"]
    return audio_id


async def transcribe(client: httpx.AsyncClient, headers: dict[str, str], audio_id: str) -> str:
    r = await client.post(f"/api/v1/audio/{audio_id}/transcriptions", headers=headers, json={})
    assert r.status_code == 202, r.text
    job_id: str = r.json()["job_id"]
    return job_id


async def collect(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    *,
    until: Any = None,
    timeout: float = 30,
) -> tuple[httpx.Response, list[Sse]]:
    """Read events until the server closes the stream or `until(event)` is true."""
    events: list[Sse] = []

    async def read() -> httpx.Response:
        async with client.stream("GET", path, headers=headers) as r:
            if r.status_code != 200:
                await r.aread()
                return r
            async for event in sse_events(r):
                events.append(event)
                if until is not None and until(event):
                    break
            return r

    response = await asyncio.wait_for(read(), timeout)
    return response, events


def jobs_of(events: list[Sse]) -> list[dict[str, Any]]:
    return [e.json() for e in events if e.event == "job"]


@pytest.mark.slow
async def test_a_job_stream_follows_a_worker_in_another_process(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url)
    worker = None
    async with (
        live_server(settings, with_worker=False) as live,
        httpx.AsyncClient(base_url=live.url, timeout=60) as client,
    ):
        alice = await login(client, "alice@example.com")
        audio_id = await upload(client, alice, long_speech(tmp_path / "long.wav", 40))
        job_id = await transcribe(client, alice, audio_id)
        try:
            worker = spawn_worker(settings, tmp_path / "worker.log")
            started = time.monotonic()
            r, events = await collect(client, f"/api/v1/jobs/{job_id}/events", alice, timeout=180)
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
        finally:
            if worker is not None:
                stop_worker(worker)
        states = jobs_of(events)
        assert states[0]["status"] == "pending"  # the state when the stream opened
        assert states[-1]["status"] == "completed" and states[-1]["progress"] == 100
        running = [s for s in states if s["status"] == "running"]
        progress = [s["progress"] for s in running]
        # Progress arrived live (the worker reports once a second), and only grew.
        assert len({p for p in progress if p > 0}) >= 2, states
        assert progress == sorted(progress)
        assert {s["stage"] for s in running} >= {"transcribing"}, states
        ids = [int(e.id or "0") for e in events if e.event == "job"]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all(s["id"] == job_id for s in states)
        assert time.monotonic() - started < 180

        # Resume after the last event: the job is over, nothing to send: 204 (no reconnect).
        r = await client.get(
            f"/api/v1/jobs/{job_id}/events",
            headers={**alice, "Last-Event-ID": events[-1].id or ""},
        )
        assert r.status_code == 204
        # Resume from an earlier event: the current (final) state, then the end.
        r, resumed = await collect(
            client,
            f"/api/v1/jobs/{job_id}/events",
            {**alice, "Last-Event-ID": events[1].id or ""},
        )
        assert [s["status"] for s in jobs_of(resumed)] == ["completed"]
        assert resumed[-1].id == events[-1].id


async def test_user_stream_shows_only_own_jobs_and_resumes(
    tmp_path: Path, database_url: str
) -> None:
    # No worker anywhere: jobs stay pending until their owner cancels them (fast, no model).
    settings = make_settings(tmp_path, database_url)
    async with (
        live_server(settings, with_worker=False) as live,
        httpx.AsyncClient(base_url=live.url, timeout=30) as client,
    ):
        alice = await login(client, "alice@example.com")
        bob = await login(client, "bob@example.com")
        audio_id = await upload(client, alice, FIXTURES / "speech.wav")
        first = await transcribe(client, alice, audio_id)

        bob_events: list[Sse] = []

        async def bob_reads() -> None:
            async with client.stream("GET", "/api/v1/events", headers=bob) as r:
                assert r.status_code == 200
                async for event in sse_events(r):
                    bob_events.append(event)

        bob_task = asyncio.create_task(bob_reads())
        # Alice's stream starts with her active job, then shows what happens to it.
        got: list[Sse] = []

        async def alice_live() -> None:
            async with client.stream("GET", "/api/v1/events", headers=alice) as r:
                async for event in sse_events(r):
                    got.append(event)
                    if len(jobs_of(got)) >= 2:
                        return

        alice_task = asyncio.create_task(alice_live())
        await wait_for(lambda: len(jobs_of(got)) >= 1)
        assert jobs_of(got)[0]["id"] == first and jobs_of(got)[0]["status"] == "pending"
        r = await client.post(f"/api/v1/jobs/{first}/cancel", headers=alice)
        assert r.status_code == 200
        await asyncio.wait_for(alice_task, 10)
        cancelled = jobs_of(got)[1]
        assert cancelled["id"] == first and cancelled["status"] == "cancelled"
        await asyncio.sleep(0.5)
        bob_task.cancel()
        assert jobs_of(bob_events) == []  # bob saw nothing of alice's jobs

        # Resume from the first event: the job's change since (its current state) comes back.
        _, resumed = await collect(
            client,
            "/api/v1/events",
            {**alice, "Last-Event-ID": got[0].id or ""},
            until=lambda e: e.event == "job",
        )
        assert [(s["id"], s["status"]) for s in jobs_of(resumed)] == [(first, "cancelled")]
        assert resumed[0].id == got[1].id

        # Bob cannot open alice's job stream; bad ids and no credentials are refused.
        r = await client.get(f"/api/v1/jobs/{first}/events", headers=bob)
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
        r = await client.get("/api/v1/jobs/not-a-uuid/events", headers=alice)
        assert r.status_code == 422
        r = await client.get(f"/api/v1/jobs/{first}/events")
        assert r.status_code == 401
        r = await client.get("/api/v1/events")
        assert r.status_code == 401
        # A Last-Event-ID that is not ours is ignored: the stream starts afresh.
        second = await transcribe(client, alice, audio_id)
        _, fresh = await collect(
            client,
            f"/api/v1/jobs/{second}/events",
            {**alice, "Last-Event-ID": "not-a-number"},
            until=lambda e: e.event == "job",
        )
        assert jobs_of(fresh)[0]["status"] == "pending"


async def wait_for(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_heartbeats_and_disconnect_frees_the_listener(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, events_heartbeat_s=0.3)
    async with live_server(settings, with_worker=False) as live:
        hub = live.app.state.job_events
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            alice = await login(client, "alice@example.com")
            with psycopg.connect(database_url, autocommit=True) as db:
                assert db.execute(LISTENERS).fetchone() == (0,)
                streams = []
                for _ in range(3):
                    cm = client.stream("GET", "/api/v1/events", headers=alice)
                    streams.append((cm, await cm.__aenter__()))
                pings: list[Sse] = []
                started = time.monotonic()
                async for event in sse_events(streams[0][1]):
                    pings.append(event)
                    if len(pings) >= 3:
                        break
                elapsed = time.monotonic() - started
                assert all(p.comments and p.event is None for p in pings), pings
                assert 0.5 < elapsed < 3, elapsed  # about every 0.3 s
                assert hub.subscriber_count == 3
                # Three streams, one listening connection.
                assert db.execute(LISTENERS).fetchone() == (1,)
                for cm, _ in streams:
                    await cm.__aexit__(None, None, None)
                await wait_for(lambda: hub.subscriber_count == 0)
                deadline = time.monotonic() + 10
                while db.execute(LISTENERS).fetchone() != (0,):
                    assert time.monotonic() < deadline, "the LISTEN connection stayed open"
                    await asyncio.sleep(0.1)
                assert not hub.listening


async def test_streams_resynchronise_after_the_listener_connection_breaks(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url)
    async with live_server(settings, with_worker=False) as live:
        hub = live.app.state.job_events
        hub.reconnect_s = 0.2
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            alice = await login(client, "alice@example.com")
            audio_id = await upload(client, alice, FIXTURES / "speech.wav")
            job_id = await transcribe(client, alice, audio_id)
            got: list[Sse] = []

            async def follow() -> None:
                async with client.stream(
                    "GET", f"/api/v1/jobs/{job_id}/events", headers=alice
                ) as r:
                    async for event in sse_events(r):
                        got.append(event)

            task = asyncio.create_task(follow())
            await wait_for(lambda: len(jobs_of(got)) == 1)
            with psycopg.connect(database_url, autocommit=True) as db:
                # The listening connection dies (a database restart, a network cut) and, while
                # nobody listens, the job is cancelled: no NOTIFY reaches this process.
                db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN verbatim%%'"
                )
                connects = hub.connects
                r = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=alice)
                assert r.status_code == 200
            await asyncio.wait_for(task, 15)  # the stream ends with the job
            assert hub.connects > connects
            assert [s["status"] for s in jobs_of(got)] == ["pending", "cancelled"]
