"""Live job events follow the tenancy rules: a member watches any job of the organisation, and
the stream of "all my jobs" shows only the active tenant's (a personal library and an
organisation never mix, on the event streams either)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import psycopg
from sqlalchemy import text

from tests.conftest import FIXTURES, wait_for_job
from tests.tenancy.helpers import in_tenant, two_orgs, user_id
from tests.tenancy.test_isolation import _As
from verbatim.events import service
from verbatim.events.hub import CHANNEL, JobEventHub
from verbatim.services import get_services


async def test_event_streams_follow_the_active_tenant(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    t = await two_orgs(app_client)
    hdr = in_tenant(t.a)
    with (FIXTURES / "speech.wav").open("rb") as fh:
        r = await t.alice.post(
            "/api/v1/audio", headers=hdr, files={"file": ("speech.wav", fh, "audio/wav")}
        )
    assert r.status_code == 201, r.text
    r = await t.alice.post(f"/api/v1/audio/{r.json()['id']}/transcriptions", headers=hdr, json={})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert (await wait_for_job(_As(t.alice, hdr), job_id, timeout=120))["status"] == "completed"

    # The viewer of A follows the owner's job (its final state, then the stream ends); B's
    # owner gets 404, in B and claiming A.
    r = await app_client.get(f"/api/v1/jobs/{job_id}/events", headers={**t.vic.headers, **hdr})
    assert r.status_code == 200, r.text
    data = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    assert data[-1]["id"] == job_id and data[-1]["status"] == "completed"
    assert "tenant_id" not in data[-1] and "user_id" not in data[-1]
    for headers in ({**t.bob.headers, **in_tenant(t.b)}, {**t.bob.headers, **hdr}):
        r = await app_client.get(f"/api/v1/jobs/{job_id}/events", headers=headers)
        assert r.status_code == 404, r.text

    # "All my jobs": alice's organisation job shows in A, not in her personal tenant.
    alice = uuid.UUID(await user_id(t.alice))
    async with get_services().sessionmaker() as session:
        personal = await session.scalar(
            text('SELECT tenant_id FROM "user" WHERE id = :id'), {"id": alice}
        )
        in_a = await service.changed_since(session, alice, uuid.UUID(t.a), 0)
        in_personal = await service.changed_since(session, alice, personal, 0)
    assert job_id in {e["id"] for e in in_a}
    assert job_id not in {e["id"] for e in in_personal}

    # Live: an event of A reaches alice's stream in A and not her personal one.
    hub = JobEventHub(database_url)
    try:
        read_at = time.monotonic()
        maker = get_services().sessionmaker
        streams = {
            "personal": service.user_stream(hub, maker, alice, None, [], read_at, personal),
            "a": service.user_stream(hub, maker, alice, None, [], read_at, uuid.UUID(t.a)),
        }
        first = {name: asyncio.ensure_future(anext(s)) for name, s in streams.items()}
        await asyncio.sleep(0.5)  # both subscribed (the hub listens from the first)
        await asyncio.to_thread(_notify, database_url, alice, uuid.UUID(t.a), "j-org", 10**9)
        await asyncio.to_thread(_notify, database_url, alice, personal, "j-own", 10**9 + 1)

        async def ids_until(name: str, marker: str) -> list[str]:
            seen = [json.loads((await asyncio.wait_for(first[name], 10))["data"])["id"]]
            while seen[-1] != marker:
                event = await asyncio.wait_for(anext(streams[name]), 10)
                seen.append(json.loads(event["data"])["id"])
            return seen

        in_org_stream = await ids_until("a", "j-org")
        in_own_stream = await ids_until("personal", "j-own")
        assert "j-own" not in in_org_stream and "j-org" not in in_own_stream
        assert job_id not in in_own_stream
        for s in streams.values():
            await s.aclose()
    finally:
        await hub.close()


def _notify(url: str, user: uuid.UUID, tenant: uuid.UUID, job: str, seq: int) -> None:
    payload = {
        "seq": seq,
        "id": job,
        "user_id": str(user),
        "tenant_id": str(tenant),
        "type": "transcription",
        "status": "running",
        "progress": 0.5,
    }
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(payload)))
