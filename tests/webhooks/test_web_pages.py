"""The webhooks pages over HTTP with the cookie session: create (the secret shown once), edit,
test, the delivery log in cursor pages, redeliver, delete; another user gets 404 pages; bad
input shows the API's message and stores nothing."""

from __future__ import annotations

import asyncio
import re
import time

import httpx

from tests.web.test_session import web_register
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_endpoints import count


async def settled(client: httpx.AsyncClient, hook_id: str, n: int) -> list[dict[str, object]]:
    """The endpoint's deliveries once `n` of them have been attempted and none is pending."""
    deadline = time.monotonic() + 30
    while True:
        items = (await client.get(f"/api/v1/webhooks/{hook_id}/deliveries")).json()["items"]
        if len(items) >= n and all(d["status"] != "pending" for d in items):
            return list(items)
        assert time.monotonic() < deadline, items
        await asyncio.sleep(0.2)


async def _create(
    client: httpx.AsyncClient, csrf: str, url: str, **extra: object
) -> httpx.Response:
    return await client.post(
        "/webhooks",
        data={
            "csrf_token": csrf,
            "url": url,
            "events": ["transcription.completed", "transcription.failed"],
            **extra,
        },
    )


async def test_create_edit_test_log_redeliver_delete(
    app_client: httpx.AsyncClient, receiver: Receiver, database_url: str
) -> None:
    csrf = await web_register(app_client, "hooks@example.com")
    r = await _create(app_client, csrf, receiver.url + "/hook", description="CI")
    assert r.status_code == 201, r.text
    secret = re.search(r'<code id="new-secret">(whsec_[^<]+)</code>', r.text)
    assert secret, "the secret is shown on creation"
    listing = await app_client.get("/webhooks")
    assert receiver.url + "/hook" in listing.text and secret.group(1) not in listing.text
    hook_id = re.search(r'data-hook="([0-9a-f-]+)"', listing.text).group(1)  # type: ignore[union-attr]

    # Edit: only job.completed, disabled then enabled again.
    r = await app_client.post(
        f"/webhooks/{hook_id}",
        data={
            "csrf_token": csrf,
            "url": receiver.url + "/hook2",
            "events": ["transcription.completed"],
        },
    )
    assert r.status_code == 303
    api = (await app_client.get(f"/api/v1/webhooks/{hook_id}")).json()
    assert api["url"] == receiver.url + "/hook2" and api["events"] == ["transcription.completed"]
    assert api["enabled"] is False and api["disabled_reason"] == "disabled_by_user"
    r = await app_client.post(
        f"/webhooks/{hook_id}",
        data={
            "csrf_token": csrf,
            "url": receiver.url + "/hook2",
            "events": ["transcription.completed"],
            "enabled": "on",
        },
    )
    assert r.status_code == 303
    assert (await app_client.get(f"/api/v1/webhooks/{hook_id}")).json()["enabled"] is True

    # Send three tests: they arrive, and the log pages through them by cursor.
    for _ in range(3):
        r = await app_client.post(f"/webhooks/{hook_id}/test", data={"csrf_token": csrf})
        assert r.status_code == 303
    await settled(app_client, hook_id, 3)
    assert len(receiver.on("/hook2")) == 3
    import verbatim.web.webhooks as pages_module

    pages_module.DELIVERIES_PER_PAGE = 2
    try:
        first = await app_client.get(f"/webhooks/{hook_id}")
        rows = re.findall(r'data-delivery="([0-9a-f-]+)"', first.text)
        assert len(rows) == 2
        cursor = re.search(r'\?cursor=([^"]+)" rel="next"', first.text)
        assert cursor, first.text
        second = await app_client.get(f"/webhooks/{hook_id}?cursor={cursor.group(1)}")
        rows2 = re.findall(r'data-delivery="([0-9a-f-]+)"', second.text)
        assert len(rows2) == 1 and rows2[0] not in rows
    finally:
        pages_module.DELIVERIES_PER_PAGE = 20
    page = await app_client.get(f"/webhooks/{hook_id}")
    assert "webhook.test" in page.text and "HTTP 200" in page.text

    # Redeliver one: it arrives again.
    r = await app_client.post(
        f"/webhooks/{hook_id}/deliveries/{rows2[0]}/redeliver", data={"csrf_token": csrf}
    )
    assert r.status_code == 303
    await settled(app_client, hook_id, 3)
    deadline = time.monotonic() + 30
    while len(receiver.on("/hook2")) < 4:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)

    # A damaged cursor is a clear message, not a crash.
    bad = await app_client.get(f"/webhooks/{hook_id}?cursor=nonsense")
    assert bad.status_code == 422 and 'role="alert"' in bad.text

    r = await app_client.post(f"/webhooks/{hook_id}/delete", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert count(database_url, "webhook_endpoint") == 0


async def test_bad_inputs_show_a_message_and_store_nothing(
    app_client: httpx.AsyncClient, receiver: Receiver, database_url: str
) -> None:
    csrf = await web_register(app_client, "bad@example.com")
    for url, message in (
        ("http://127.0.0.1:9/hook", "private"),
        ("ftp://example.com/x", ""),
        ("not a url", ""),
    ):
        r = await _create(app_client, csrf, url)
        assert r.status_code == 422, (url, r.status_code)
        assert 'id="hook-error"' in r.text and message in r.text.lower()
    r = await app_client.post("/webhooks", data={"csrf_token": csrf, "url": receiver.url + "/x"})
    assert r.status_code == 422 and "at least one event" in r.text
    assert count(database_url, "webhook_endpoint") == 0
    # Without the CSRF token: refused.
    r = await app_client.post(
        "/webhooks", data={"url": receiver.url + "/x", "events": "download.failed"}
    )
    assert r.status_code == 403
    assert count(database_url, "webhook_endpoint") == 0

    # An edit with a refused URL keeps the old settings, events included.
    r = await _create(app_client, csrf, receiver.url + "/ok")
    hook_id = re.search(r'data-hook="([0-9a-f-]+)"', r.text).group(1)  # type: ignore[union-attr]
    r = await app_client.post(
        f"/webhooks/{hook_id}",
        data={"csrf_token": csrf, "url": "http://169.254.169.254/", "events": ["job.progress"]},
    )
    assert r.status_code == 422 and 'id="hook-error"' in r.text
    api = (await app_client.get(f"/api/v1/webhooks/{hook_id}")).json()
    assert api["url"] == receiver.url + "/ok" and api["events"] == [
        "transcription.completed",
        "transcription.failed",
    ]
    assert api["enabled"] is True


async def test_another_user_gets_404_pages(
    app_client: httpx.AsyncClient, receiver: Receiver, database_url: str
) -> None:
    csrf = await web_register(app_client, "owner@example.com")
    r = await _create(app_client, csrf, receiver.url + "/mine")
    hook_id = re.search(r'data-hook="([0-9a-f-]+)"', r.text).group(1)  # type: ignore[union-attr]
    await app_client.post(f"/webhooks/{hook_id}/test", data={"csrf_token": csrf})
    delivery = (await settled(app_client, hook_id, 1))[0]

    app_client.cookies.clear()
    other = await web_register(app_client, "other@example.com")
    assert receiver.url + "/mine" not in (await app_client.get("/webhooks")).text
    for method, path, data in (
        ("get", f"/webhooks/{hook_id}", None),
        (
            "post",
            f"/webhooks/{hook_id}",
            {"url": receiver.url + "/stolen", "events": "download.failed"},
        ),
        ("post", f"/webhooks/{hook_id}/test", {}),
        ("post", f"/webhooks/{hook_id}/delete", {}),
        ("post", f"/webhooks/{hook_id}/deliveries/{delivery['id']}/redeliver", {}),
    ):
        kw = {} if data is None else {"data": {"csrf_token": other, **data}}
        r = await getattr(app_client, method)(path, **kw)
        assert r.status_code == 404, (method, path, r.status_code)
    assert count(database_url, "webhook_endpoint") == 1
    assert count(database_url, "webhook_delivery") == 1
