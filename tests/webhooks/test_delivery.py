"""Delivery through the real queue and worker to a receiver that verifies every signature:
the events of an upload and a transcription, retries after 500s and timeouts, an endpoint
that stays down (disabled, the owner told through the API), redelivery with the same id, and
messages written only with the transaction of their event."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from tests.live import free_port
from tests.webhooks.conftest import add_endpoint
from tests.webhooks.receiver import Receiver
from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.models import Job, User
from verbatim.services import get_services
from verbatim.webhooks import events
from verbatim.webhooks.models import WebhookDelivery


async def deliveries(user: ApiUser, hook_id: str, **params: Any) -> list[dict[str, Any]]:
    r = await user.get(f"/api/v1/webhooks/{hook_id}/deliveries", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def settled(user: ApiUser, hook_id: str, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The endpoint's deliveries once there are n and none is pending any more."""
    deadline = time.monotonic() + timeout
    while True:
        items = await deliveries(user, hook_id)
        if len(items) >= n and all(d["status"] != "pending" for d in items):
            return items
        assert time.monotonic() < deadline, items
        await asyncio.sleep(0.2)


def check_signed(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    """Every request on path verified with the endpoint's secret; their payloads."""
    got = receiver.on(path)
    assert got, "nothing received"
    now = datetime.now(UTC).timestamp()
    for r in got:
        assert r.error is None, r.error
        assert r.headers["webhook-id"].startswith("msg_")
        assert abs(int(r.headers["webhook-timestamp"]) - now) < 120
        assert r.headers["webhook-signature"].startswith("v1,")
        assert r.headers["content-type"] == "application/json"
    return [r.verified for r in got]


@pytest.mark.slow
async def test_upload_and_transcription_events_arrive_signed(
    alice: ApiUser, receiver: Receiver, settings: Settings
) -> None:
    settings.webhook_progress_interval_s = 0  # every progress report becomes a message
    hook = await add_endpoint(alice, receiver, "/all", events=list(events.EVENT_TYPES))
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
    job = await wait_for_job(alice, r.json()["job_id"])
    assert job["status"] == "completed"
    deadline = time.monotonic() + 60
    while "search.indexed" not in {p["type"] for p in check_signed(receiver, "/all")}:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    # The same bytes again: no new audio file, no second audio.created.
    again = (await alice.upload(FIXTURES / "speech.wav")).json()
    assert again["is_duplicate"] is True

    items = await settled(alice, hook["id"], 4)
    payloads = check_signed(receiver, "/all")
    types = [p["type"] for p in payloads]
    assert types.count("audio.created") == 1
    assert types.count("transcription.completed") == 1
    assert types.count("search.indexed") == 1
    assert types.count("job.progress") >= 1
    created = next(p for p in payloads if p["type"] == "audio.created")
    assert created["data"]["audio_file_id"] == audio["id"]
    assert created["data"]["original_filename"] == "speech.wav"
    done = next(p for p in payloads if p["type"] == "transcription.completed")
    assert done["data"]["job_id"] == job["id"] and done["data"]["status"] == "completed"
    assert done["data"]["transcription_id"] == job["transcription_id"]
    progress = [p["data"] for p in payloads if p["type"] == "job.progress"]
    assert all(p["status"] == "running" for p in progress)
    # The log: one attempt each, status and response time, webhook-id = msg_ + delivery id.
    ids = {r.headers["webhook-id"] for r in receiver.on("/all")}
    assert ids == {d["webhook_id"] for d in items}
    for d in items:
        assert d["status"] == "succeeded" and d["attempts"] == 1
        assert d["last_status_code"] == 200 and d["last_response_ms"] > 0
        assert d["attempt_log"][0]["status_code"] == 200
        assert d["webhook_id"] == "msg_" + d["id"].replace("-", "")
    # The body sent is the payload shown in the log, byte for byte.
    first = receiver.on("/all")[0]
    shown = next(d for d in items if d["webhook_id"] == first.headers["webhook-id"])
    assert json.loads(first.body) == shown["payload"]


async def test_a_receiver_that_fails_then_recovers(alice: ApiUser, receiver: Receiver) -> None:
    hook = await add_endpoint(alice, receiver, "/flaky")
    receiver.script("/flaky", fail_times=2)
    r = await alice.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert r.status_code == 202 and r.json()["status"] == "pending"
    (d,) = await settled(alice, hook["id"], 1)
    assert d["status"] == "succeeded" and d["attempts"] == 3
    assert [a["status_code"] for a in d["attempt_log"]] == [500, 500, 200]
    assert [a["error"] for a in d["attempt_log"]] == ["http_500", "http_500", None]
    payloads = check_signed(receiver, "/flaky")
    assert len(payloads) == 3 and all(p == payloads[0] for p in payloads)
    assert {r.headers["webhook-id"] for r in receiver.on("/flaky")} == {d["webhook_id"]}
    assert payloads[0]["type"] == "webhook.test"
    h = (await alice.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert h["enabled"] is True and h["consecutive_failures"] == 0


async def test_a_slow_receiver_times_out_then_is_delivered(
    alice: ApiUser, receiver: Receiver, settings: Settings
) -> None:
    settings.webhook_timeout_s = 0.5
    hook = await add_endpoint(alice, receiver, "/slow")
    receiver.script("/slow", hang_times=1, hang_s=2.0)
    await alice.post(f"/api/v1/webhooks/{hook['id']}/test")
    (d,) = await settled(alice, hook["id"], 1)
    assert d["status"] == "succeeded" and d["attempts"] == 2
    assert d["attempt_log"][0]["error"] == "timeout"
    assert 400 < d["attempt_log"][0]["response_ms"] < 1500
    assert d["attempt_log"][1]["status_code"] == 200
    assert len({r.headers["webhook-id"] for r in receiver.on("/slow")}) == 1


async def test_an_endpoint_that_stays_down_is_disabled_and_the_owner_told(
    alice: ApiUser, receiver: Receiver
) -> None:
    down = f"http://127.0.0.2:{free_port()}/nobody"  # nothing listens there
    r = await alice.post("/api/v1/webhooks", json={"url": down})
    hook = r.json()
    await alice.post(f"/api/v1/webhooks/{hook['id']}/test")
    (d,) = await settled(alice, hook["id"], 1)
    assert d["status"] == "failed" and d["attempts"] == 3  # webhook_max_attempts
    assert {a["error"] for a in d["attempt_log"]} == {"connection_error"}
    assert d["last_status_code"] is None
    h = (await alice.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert h["enabled"] is False and h["disabled_reason"] == "repeated_failures"
    assert h["disabled_at"] is not None and h["consecutive_failures"] == 1
    assert h["failing_since"] is not None
    # Disabled: new events write no message for it; a redelivery is refused.
    await alice.upload(FIXTURES / "speech.wav")
    assert len(await deliveries(alice, hook["id"])) == 1
    r = await alice.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver")
    assert r.status_code == 409 and r.json()["error"]["code"] == "webhook_disabled"
    failed = await deliveries(alice, hook["id"], status="failed")
    assert [x["id"] for x in failed] == [d["id"]]
    assert await deliveries(alice, hook["id"], status="succeeded") == []

    # The owner fixes the receiver, re-enables, and asks for the message again.
    fixed = await alice.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"url": receiver.url + "/back", "enabled": True}
    )
    assert fixed.json()["enabled"] is True and fixed.json()["consecutive_failures"] == 0
    receiver.secret = None  # signatures are checked in the other tests
    r = await alice.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver")
    assert r.status_code == 202
    (again,) = await settled(alice, hook["id"], 1)
    assert again["id"] == d["id"] and again["status"] == "succeeded"
    assert again["attempts"] == 4 and again["attempt_log"][-1]["status_code"] == 200
    (got,) = receiver.on("/back")
    assert got.headers["webhook-id"] == d["webhook_id"]


async def test_redelivery_sends_the_same_message(alice: ApiUser, receiver: Receiver) -> None:
    hook = await add_endpoint(alice, receiver, "/again")
    await alice.post(f"/api/v1/webhooks/{hook['id']}/test")
    (d,) = await settled(alice, hook["id"], 1)
    url = f"/api/v1/webhooks/{hook['id']}/deliveries/{d['id']}"
    r = await alice.post(f"{url}/redeliver")
    assert r.status_code == 202 and r.json()["status"] == "pending"
    r2 = await alice.post(f"{url}/redeliver")  # still under way
    assert r2.status_code in (202, 409)
    if r2.status_code == 409:
        assert r2.json()["error"]["code"] == "delivery_in_progress"
    (d2,) = await settled(alice, hook["id"], 1)
    assert d2["status"] == "succeeded" and d2["attempts"] >= 2
    got = receiver.on("/again")
    assert len(got) == d2["attempts"]
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert len({r.body for r in got}) == 1
    assert all(p == check_signed(receiver, "/again")[0] for p in check_signed(receiver, "/again"))


async def test_a_message_exists_only_if_its_event_commits(
    alice: ApiUser, receiver: Receiver
) -> None:
    hook = await add_endpoint(alice, receiver, "/tx")
    services = get_services()

    async def counts() -> tuple[int, int, int]:
        async with session_scope(services.sessionmaker) as s:
            return (
                await s.scalar(select(func.count()).select_from(WebhookDelivery)) or 0,
                await s.scalar(select(func.count()).select_from(Job)) or 0,
                # Only delivery tasks: periodic tasks come and go meanwhile.
                await s.scalar(
                    text(
                        "SELECT count(*) FROM procrastinate_jobs "
                        "WHERE task_name = 'webhooks.deliver'"
                    )
                )
                or 0,
            )

    before = await counts()
    async with services.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == alice.email))
        assert user is not None
        n = await events.emit(session, user.id, "audio.created", {"audio_file_id": "x"})
        assert n == 1
        await session.rollback()  # the event's transaction fails: no message, no job
    assert await counts() == before
    assert receiver.on("/tx") == []
    assert hook["events"] == list(events.DEFAULT_EVENTS)
