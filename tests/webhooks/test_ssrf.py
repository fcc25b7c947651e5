"""Webhook destinations are checked where it matters, at connect time on every attempt, by the
downloads' guard: loopback, private and metadata addresses are refused unless allow-listed
(metadata always), names are resolved and checked, and redirects are not followed."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from ipaddress import ip_address, ip_network

import pytest

from tests.conftest import ApiUser
from tests.webhooks.conftest import ALLOW
from tests.webhooks.receiver import Receiver
from verbatim.config import Settings
from verbatim.downloads.guard import is_blocked
from verbatim.webhooks import sender

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def internal() -> Iterator[Receiver]:
    """An internal service on 127.0.0.1, which no webhook may reach."""
    r = Receiver(host="127.0.0.1").start()
    yield r
    r.stop()


async def send(url: str, allow: list = ALLOW) -> sender.Attempt:  # type: ignore[type-arg]
    return await sender.send(url, SECRET, "msg_x", {"type": "t"}, allow=allow, timeout_s=5)


async def test_loopback_private_and_metadata_are_refused(
    internal: Receiver, receiver: Receiver
) -> None:
    attempt = await send(internal.url + "/x")
    assert attempt.error == "blocked_destination" and attempt.status_code is None
    # By name: localhost resolves to loopback, and is refused once resolved.
    port = internal.url.rsplit(":", 1)[1]
    attempt = await send(f"http://localhost:{port}/x")
    assert attempt.error == "blocked_destination"
    # Metadata addresses, whatever the allow-list says.
    everything = [ip_network("0.0.0.0/0"), ip_network("::/0")]
    attempt = await send("http://169.254.169.254/latest/meta-data/", allow=everything)
    assert attempt.error == "blocked_destination"
    attempt = await send("http://[::ffff:169.254.169.254]/", allow=everything)
    assert attempt.error == "blocked_destination"
    for url in ("http://10.1.2.3/", "http://192.168.0.1/", "http://[fd00::1]/", "http://0.0.0.0/"):
        attempt = await send(url)
        assert attempt.error == "blocked_destination", url
    assert internal.received == []
    # The allow-listed receiver is reached.
    assert (await send(receiver.url + "/ok")).status_code == 200
    # And the operator can allow-list the internal one.
    assert (await send(internal.url + "/x", allow=[ip_network("127.0.0.1/32")])).ok


async def test_a_host_name_resolving_to_a_blocked_address(internal: Receiver) -> None:
    """This machine's own name resolves to loopback: checked after resolution, refused."""
    name = socket.gethostname()
    address = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    assert is_blocked(ip_address(address), ALLOW), address
    port = internal.url.rsplit(":", 1)[1]
    attempt = await send(f"http://{name}:{port}/x")
    assert attempt.error == "blocked_destination"
    assert internal.received == []


async def test_redirects_are_not_followed(internal: Receiver, receiver: Receiver) -> None:
    url = receiver.script("/moved", redirect_to=internal.url + "/secret")
    attempt = await send(url)
    assert attempt.status_code == 302 and attempt.error == "redirect_not_followed"
    assert not attempt.ok
    assert internal.received == []


async def test_a_destination_refused_at_delivery_fails_and_disables(
    alice: ApiUser, internal: Receiver, settings: Settings
) -> None:
    """The URL passed the check at creation (the operator allowed it then); by delivery time
    it is no longer allowed: the attempt is refused at connect time, not retried."""
    settings.webhook_allow_networks = [*ALLOW, ip_network("127.0.0.1/32")]
    r = await alice.post("/api/v1/webhooks", json={"url": internal.url + "/hook"})
    assert r.status_code == 201
    hook = r.json()
    settings.webhook_allow_networks = list(ALLOW)
    await alice.post(f"/api/v1/webhooks/{hook['id']}/test")
    deadline = time.monotonic() + 30
    while True:
        (d,) = (await alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
        if d["status"] != "pending":
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert d["status"] == "failed" and d["attempts"] == 1
    assert d["last_error"] == "blocked_destination"
    h = (await alice.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert h["enabled"] is False and h["disabled_reason"] == "blocked_destination"
    assert internal.received == []
