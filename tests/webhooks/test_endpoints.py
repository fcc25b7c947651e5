"""The /api/v1/webhooks API: the secret shown once, ownership (another user gets 404 on every
route), bad inputs refused with a stable code and nothing stored."""

from __future__ import annotations

import uuid

import psycopg

from tests.conftest import ApiUser
from tests.webhooks.conftest import add_endpoint
from tests.webhooks.receiver import Receiver
from verbatim.config import Settings
from verbatim.webhooks.events import DEFAULT_EVENTS


def count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as db:
        row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else -1


async def test_crud_and_the_secret_shown_once(alice: ApiUser, receiver: Receiver) -> None:
    created = await add_endpoint(alice, receiver, "/hook", description="ci")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["events"] == list(DEFAULT_EVENTS)  # job.progress is opt-in
    assert created["enabled"] is True and created["disabled_reason"] is None
    hook = f"/api/v1/webhooks/{created['id']}"

    got = (await alice.get(hook)).json()
    assert "secret" not in got and got["url"] == receiver.url + "/hook"
    listed = (await alice.get("/api/v1/webhooks")).json()["items"]
    assert [h["id"] for h in listed] == [created["id"]] and "secret" not in listed[0]

    r = await alice.patch(hook, json={"events": ["job.progress", "audio.created"]})
    assert r.status_code == 200
    assert r.json()["events"] == ["audio.created", "job.progress"]  # known order, no duplicates
    r = await alice.patch(hook, json={"enabled": False})
    assert r.json()["enabled"] is False and r.json()["disabled_reason"] == "disabled_by_user"
    r = await alice.post(f"{hook}/test")
    assert r.status_code == 409 and r.json()["error"]["code"] == "webhook_disabled"
    r = await alice.patch(hook, json={"enabled": True})
    assert r.json()["enabled"] is True and r.json()["disabled_reason"] is None

    r = await alice.delete(hook)
    assert r.status_code == 204
    assert (await alice.get(hook)).status_code == 404


async def test_another_user_gets_404_everywhere(
    alice: ApiUser, bob: ApiUser, receiver: Receiver, database_url: str
) -> None:
    created = await add_endpoint(alice, receiver, "/hook")
    hook = f"/api/v1/webhooks/{created['id']}"
    r = await alice.post(f"{hook}/test")
    assert r.status_code == 202
    delivery = r.json()
    deliveries = f"{hook}/deliveries/{delivery['id']}"
    for method, url, body in (
        ("get", hook, None),
        ("patch", hook, {"description": "mine now"}),
        ("delete", hook, None),
        ("post", f"{hook}/test", None),
        ("get", f"{hook}/deliveries", None),
        ("get", deliveries, None),
        ("post", f"{deliveries}/redeliver", None),
    ):
        kw = {"json": body} if body is not None else {}
        r = await getattr(bob, method)(url, **kw)
        assert r.status_code == 404, (method, url, r.text)
        assert r.json()["error"]["code"] == "webhook_not_found"
    assert (await bob.get("/api/v1/webhooks")).json()["items"] == []
    # Alice's delivery under another of her endpoints' paths is not found either.
    other = await add_endpoint(alice, receiver, "/other")
    r = await alice.get(f"/api/v1/webhooks/{other['id']}/deliveries/{delivery['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "delivery_not_found"
    assert (await alice.get(hook)).json()["description"] == ""
    assert count(database_url, "webhook_endpoint") == 2


async def test_bad_inputs_are_refused_and_nothing_is_stored(
    alice: ApiUser, receiver: Receiver, database_url: str, settings: Settings
) -> None:
    cases = [
        ({"url": "ftp://example.com/hook"}, "unsupported_url"),
        ({"url": "http://127.0.0.1:9/hook"}, "blocked_destination"),  # not allow-listed
        ({"url": "http://169.254.169.254/latest"}, "blocked_destination"),
        ({"url": "http://localhost/hook"}, "blocked_destination"),
        ({"url": "http://user:pw@example.com/"}, "invalid_url"),
        ({"url": "not a url"}, "invalid_url"),
        ({"url": ""}, "invalid_url"),
        ({"url": "https://example.com/" + "a" * 3000}, "validation_error"),
        ({"url": "https://example.com/", "events": ["audio.deleted"]}, "invalid_events"),
        ({"url": "https://example.com/", "events": []}, "invalid_events"),
        ({"url": "https://example.com/", "events": "audio.created"}, "validation_error"),
        ({"url": "https://example.com/", "secret": "mine"}, "validation_error"),
        ({"events": ["audio.created"]}, "validation_error"),
        ({"url": "https://example.com/", "description": "x" * 501}, "validation_error"),
        ({"url": "https://example.com/\x00"}, "validation_error"),
    ]
    for body, code in cases:
        r = await alice.post("/api/v1/webhooks", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == code, (body, r.json())
    assert count(database_url, "webhook_endpoint") == 0

    created = await add_endpoint(alice, receiver, "/hook")
    hook = f"/api/v1/webhooks/{created['id']}"
    for body, code in (
        ({"url": "http://10.0.0.1/"}, "blocked_destination"),
        ({"events": ["nope"]}, "invalid_events"),
        ({"enabled": "yes"}, "validation_error"),
        ({"secret": "x"}, "validation_error"),
    ):
        r = await alice.patch(hook, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == code
    assert (await alice.get(hook)).json()["url"] == receiver.url + "/hook"
    for url in ("/api/v1/webhooks/not-a-uuid", f"{hook}/deliveries/nope"):
        assert (await alice.get(url)).status_code == 422
    r = await alice.get(f"{hook}/deliveries", params={"status": "lost"})
    assert r.status_code == 422
    missing = f"/api/v1/webhooks/{uuid.uuid4()}"
    assert (await alice.get(missing)).status_code == 404
    r = await alice.post(f"{hook}/deliveries/{uuid.uuid4()}/redeliver")
    assert r.status_code == 404 and r.json()["error"]["code"] == "delivery_not_found"
    r = await alice.client.get("/api/v1/webhooks")
    assert r.status_code == 401

    # The per-user limit: a clear 409, and nothing more stored.
    settings.webhook_max_endpoints = 2
    await add_endpoint(alice, receiver, "/second")
    r = await alice.post("/api/v1/webhooks", json={"url": receiver.url + "/third"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_many_webhooks"
    assert count(database_url, "webhook_endpoint") == 2
