from __future__ import annotations

import socket
from collections.abc import Iterator
from ipaddress import ip_address, ip_network

import pytest

from tests.downloads.servers import MediaServer
from verbatim.downloads.guard import is_blocked

# The one network tests allow-list; everything else on loopback stays blocked.
ALLOWED_HOST = "127.0.0.2"
ALLOW = [ip_network(f"{ALLOWED_HOST}/32")]


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    """The "public" site: on the allow-listed address."""
    with MediaServer(ALLOWED_HOST) as server:
        yield server


@pytest.fixture
def blocked_server() -> Iterator[MediaServer]:
    """An internal service on 127.0.0.1 that no download may reach."""
    with MediaServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def blocked_name() -> Iterator[tuple[str, MediaServer]]:
    """A host name (not an IP, not "localhost") that resolves to a blocked address, with a
    server listening there: this machine's own name (127.0.0.1 or 127.0.1.1 on most hosts)."""
    name = socket.gethostname()
    try:
        address = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError:
        pytest.skip(f"the host name {name!r} does not resolve here")
    if address == ALLOWED_HOST or not is_blocked(ip_address(address), ALLOW):
        pytest.skip(f"the host name {name!r} resolves to {address}, which is not blocked")
    with MediaServer(address) as server:
        yield name, server
