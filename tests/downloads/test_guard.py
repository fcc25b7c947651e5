"""The network guard: which addresses and URLs a download may reach, checked at connect time."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from tests.downloads.servers import MediaServer
from verbatim.downloads.guard import (
    BlockedDestination,
    Guard,
    UrlRefused,
    is_blocked,
    parse_ip,
    validate_url,
)

BLOCKED = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.1.1",
    "100.64.0.1",
    "100.100.100.200",
    "192.0.0.192",
    "192.0.2.1",
    "198.18.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
    "fe80::1",
    "fe80::1%1",
    "fc00::1",
    "fd00:ec2::254",
    "fec0::1",
    "ff02::1",
    "2001:db8::1",
    "100::1",
]
PUBLIC = [
    "8.8.8.8",
    "93.184.216.34",
    "1.1.1.1",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert is_blocked(ip_address(address.split("%")[0]))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert not is_blocked(ip_address(address))


def test_allow_list_opens_only_its_networks() -> None:
    allow = [ip_network("127.0.0.2/32"), ip_network("10.0.0.0/8")]
    assert not is_blocked(ip_address("127.0.0.2"), allow)
    assert not is_blocked(ip_address("::ffff:127.0.0.2"), allow)
    assert not is_blocked(ip_address("10.9.8.7"), allow)
    assert is_blocked(ip_address("127.0.0.1"), allow)
    assert is_blocked(ip_address("::1"), allow)
    # Metadata endpoints stay refused even inside an allowed network.
    assert is_blocked(ip_address("169.254.169.254"), [ip_network("169.254.0.0/16")])


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("::1", "::1"),
        ("10.0.0.1", "10.0.0.1"),
        ("example.com", None),
        ("cafe.be", None),
        ("localhost", None),
    ],
)
def test_numeric_host_forms(host: str, expected: str | None) -> None:
    parsed = parse_ip(host)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/a.mp3", "unsupported_url"),
        ("file:///etc/passwd", "unsupported_url"),
        ("data:audio/wav;base64,UklGRg==", "unsupported_url"),
        ("javascript:alert(1)", "unsupported_url"),
        ("gopher://example.com/", "unsupported_url"),
        ("//example.com/a.mp3", "unsupported_url"),
        ("example.com/a.mp3", "unsupported_url"),
        ("http://user:secret@example.com/a.mp3", "invalid_url"),
        ("http://user@example.com/a.mp3", "invalid_url"),
        ("http://evil.example\\@127.0.0.1/", "invalid_url"),
        ("http:///a.mp3", "invalid_url"),
        ("http://exa mple.com/", "invalid_url"),
        ("http://example.com/\x00", "invalid_url"),
        ("http://example.com:99999/", "invalid_url"),
        ("http://example.com:0/", "invalid_url"),
        ("http://" + "a" * 2100 + ".com/", "invalid_url"),
        ("", "invalid_url"),
        ("http://127.0.0.1/", "blocked_destination"),
        ("http://127.0.0.1:8000/a.mp3", "blocked_destination"),
        ("http://2130706433/", "blocked_destination"),
        ("http://0x7f000001/", "blocked_destination"),
        ("http://0177.0.0.1/", "blocked_destination"),
        ("http://127.1/", "blocked_destination"),
        ("http://0/", "blocked_destination"),
        ("http://[::1]/", "blocked_destination"),
        ("http://[::ffff:127.0.0.1]:80/", "blocked_destination"),
        ("http://[::ffff:7f00:1]/", "blocked_destination"),
        ("http://[fe80::1%25eth0]/", "blocked_destination"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "blocked_destination"),
        ("http://169.254.169.254/latest/meta-data/", "blocked_destination"),
        ("HTTP://10.0.0.1/", "blocked_destination"),
        ("http://localhost/", "blocked_destination"),
        ("http://LOCALHOST./", "blocked_destination"),
        ("http://api.localhost/", "blocked_destination"),
    ],
)
def test_urls_refused_before_queuing(url: str, code: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        validate_url(url)
    assert refused.value.code == code, refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "http://example.com/talk.mp3",
        "https://example.com:8443/a/b?c=d#e",
        "https://[2606:4700::1111]/a.mp3",
        "https://93.184.216.34/a.mp3",
        "  https://example.com/padded.mp3  ",
    ],
)
def test_public_urls_pass(url: str) -> None:
    assert validate_url(url) == url.strip()


def test_allow_list_lets_a_literal_address_through() -> None:
    assert validate_url("http://127.0.0.2:9/a.mp3", [ip_network("127.0.0.2/32")])
    with pytest.raises(UrlRefused):
        validate_url("http://127.0.0.1:9/a.mp3", [ip_network("127.0.0.2/32")])


def _answers(*addresses: str) -> list[tuple[Any, ...]]:
    return [
        (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 80))
        for a in addresses
    ]


def test_resolution_keeps_only_allowed_addresses() -> None:
    guard = Guard(resolver=lambda *a: _answers("10.0.0.5", "93.184.216.34", "::1"))
    assert [r[4][0] for r in guard.getaddrinfo("mixed.example", 80)] == ["93.184.216.34"]
    guard = Guard(resolver=lambda *a: _answers("10.0.0.5", "::1"))
    with pytest.raises(BlockedDestination):
        guard.getaddrinfo("internal.example", 80)
    assert guard.refusals


def test_dns_rebinding_is_caught_at_connect_time() -> None:
    """A name that is public when checked and private when connected: the connect-time check
    sees the address actually dialled."""
    answers = iter([_answers("93.184.216.34"), _answers("127.0.0.1")])
    guard = Guard(resolver=lambda *a: next(answers))
    sock = socket.socket()
    try:
        # The first resolution (a pre-flight check, say) is public: allowed.
        (first,) = guard.getaddrinfo("rebind.example", 80)
        guard.audit("socket.connect", (sock, first[4]))
        # The second resolution, when the download connects, points inside: refused...
        with pytest.raises(BlockedDestination):
            guard.getaddrinfo("rebind.example", 80)
        # ...and so is a connect to that address, whichever resolver produced it.
        with pytest.raises(BlockedDestination):
            guard.audit("socket.connect", (sock, ("127.0.0.1", 80)))
        with pytest.raises(BlockedDestination):
            guard.audit("socket.connect", (sock, ("rebind.example", 80)))  # C-level resolution
    finally:
        sock.close()


def test_audit_hook_checks_requests_and_programs() -> None:
    guard = Guard([ip_network("127.0.0.2/32")])
    guard.audit("urllib.Request", ("https://example.com/a.mp3", None, {}, "GET"))
    for url in ("ftp://127.0.0.2/a", "file:///etc/passwd", "data:,x", "http://u:p@example.com/"):
        with pytest.raises(BlockedDestination):
            guard.audit("urllib.Request", (url, None, {}, "GET"))
    for event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork"):
        with pytest.raises(BlockedDestination):
            guard.audit(event, ("ffmpeg", ["ffmpeg", "-i", "http://10.0.0.1/x.m3u8"], None, None))
    unix = socket.socket(socket.AF_UNIX)
    inet6 = socket.socket(socket.AF_INET6)
    try:
        with pytest.raises(BlockedDestination):
            guard.audit("socket.connect", (unix, "/var/run/docker.sock"))
        with pytest.raises(BlockedDestination):
            guard.audit("socket.connect", (inet6, ("::ffff:127.0.0.1", 80, 0, 0)))
        guard.audit("socket.connect", (inet6, ("::ffff:127.0.0.2", 80, 0, 0)))
        guard.audit("open", ("/tmp/x", "r", 0))  # other events pass untouched
    finally:
        unix.close()
        inet6.close()


def test_installed_guard_refuses_for_real(blocked_server: MediaServer) -> None:
    """In a real process: connections, redirects to other schemes and programs are refused,
    the allow-listed server is reachable, and the blocked one never sees a request."""
    with MediaServer("127.0.0.2") as allowed:
        script = textwrap.dedent(
            f"""
            import socket, subprocess, urllib.request
            from ipaddress import ip_network
            from verbatim.downloads import guard
            guard.install([ip_network("127.0.0.2/32")])

            def refused(action):
                try:
                    action()
                except guard.BlockedDestination:
                    return True
                except Exception as exc:
                    linked = (exc.__cause__, exc.__context__, getattr(exc, "reason", None))
                    return any(isinstance(e, guard.BlockedDestination) for e in linked)
                return False

            blocked = "{blocked_server.url("/media/speech.wav")}"
            allowed = "{allowed.url("/media/speech.wav")}"
            print(urllib.request.urlopen(allowed, timeout=5).status)
            print(refused(lambda: urllib.request.urlopen(blocked, timeout=5)))
            print(refused(lambda: socket.create_connection(("127.0.0.1", {blocked_server.port}))))
            print(refused(lambda: socket.create_connection(("localhost", {blocked_server.port}))))
            redirect = "{allowed.url("/redirect?to=")}" + blocked
            print(refused(lambda: urllib.request.urlopen(redirect, timeout=5)))
            print(refused(lambda: urllib.request.urlopen("data:,hello")))
            print(refused(lambda: subprocess.run(["true"])))
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["200", "True", "True", "True", "True", "True", "True"]
        assert allowed.hits == [
            "/media/speech.wav",
            "/redirect?to=" + blocked_server.url("/media/speech.wav"),
        ]
    assert blocked_server.hits == []
