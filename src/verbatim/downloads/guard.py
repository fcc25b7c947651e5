"""Which network destinations a download may reach, checked where it matters: at connect time.

yt-dlp follows redirects, HTML media sources and embedded players by itself, so checking the URL
before the call is not enough. In the download process, `install()` adds an audit hook that sees
every socket connect (with the address actually dialled, so DNS rebinding cannot slip through),
every urllib request (each redirect hop: scheme and credentials) and every attempt to start a
program (ffmpeg, curl or rtmpdump would make requests the hook cannot see), and refuses what is
not allowed. Audit hooks cannot be removed, which is why this runs only in that dedicated process.

`validate_url` is the early, cheap check the API runs before it queues anything.
"""

from __future__ import annotations

import re
import socket
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

# Cloud metadata endpoints: refused even when an allow-listed network contains them.
METADATA_ADDRESSES = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
# Ranges the ipaddress flags do not all catch (100.64/10 and 192.0.0/24 count as global in some
# Python versions; multicast and site-local IPv6 count as global).
_ALSO_BLOCKED = tuple(
    ip_network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "fec0::/10")
)
_NAT64 = ip_network("64:ff9b::/96")
# What glibc's inet_aton reads as an IPv4 address: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")

_PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "pty.spawn",
    }
)
_SOCKET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})


class UrlRefused(ValueError):
    """The URL is refused before anything is queued; `code` is the stable API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BlockedDestination(PermissionError):
    """Raised inside the download process when a connection, request or program is refused."""


def _embedded_ipv4(addr: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address really reaches (::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d)."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64:
        return IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_blocked(addr: IPAddress, allow: Sequence[Network] = ()) -> bool:
    """True when a download must not reach this address."""
    if isinstance(addr, IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            return is_blocked(embedded, allow)
        # 6to4 (2002::/16) tunnels to the IPv4 address inside it.
        if addr.sixtofour is not None and is_blocked(addr.sixtofour, allow):
            return True
        addr = IPv6Address(str(addr).split("%", 1)[0])  # a zone id changes nothing here
    if addr in METADATA_ADDRESSES:
        return True
    if any(addr in net for net in allow):  # `in` is False across IP versions
        return False
    return (
        not addr.is_global
        or addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or any(addr in net for net in _ALSO_BLOCKED)
    )


def parse_ip(host: str) -> IPAddress | None:
    """The address a host names literally, in any form a resolver accepts, or None for a name."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ip_address(host)
    except ValueError:
        pass
    candidate = host[:-1] if host.endswith(".") else host
    if candidate and _NUMERIC_HOST.fullmatch(candidate) and any(c.isdigit() for c in candidate):
        try:
            return IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


_LOCALHOST_ADDRESSES = (IPv4Address("127.0.0.1"), IPv6Address("::1"))
# Full stops IDNA (UTS #46) reads as "." in a host name: ideographic, fullwidth, halfwidth.
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def normalize_host(host: str) -> str:
    """The host as a resolver will see it, mapped as IDNA does (UTS #46: NFKC, the other full
    stops as "."), so an address in circled or fullwidth digits, or with ideographic full
    stops, is checked as the address it is, up front.

    Raises UrlRefused for a host IDNA cannot encode.
    """
    if host.isascii():
        return host.lower()
    mapped = unicodedata.normalize("NFKC", host.translate(_IDNA_DOTS)).translate(_IDNA_DOTS)
    mapped = mapped.lower()
    if mapped.isascii():
        return mapped
    try:
        return mapped.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UrlRefused("invalid_url", "The URL's host is not a valid domain name") from exc


def validate_url(url: str, allow: Sequence[Network] = ()) -> str:
    """Check a user's URL before queuing it. The connect-time guard remains the real defence."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise UrlRefused("invalid_url", f"The URL must be 1 to {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UrlRefused("invalid_url", "The URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("invalid_url", f"The URL is malformed: {exc}") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UrlRefused("unsupported_url", "Only http:// and https:// links are supported")
    if "@" in parts.netloc:
        raise UrlRefused("invalid_url", "Links with a user name or password are not accepted")
    host = parts.hostname
    if not host:
        raise UrlRefused("invalid_url", "The URL has no host")
    if port == 0:
        raise UrlRefused("invalid_url", "The URL has no valid port")
    host = normalize_host(host)
    addr = parse_ip(host)
    if addr is not None:
        candidates: Iterable[IPAddress] = (addr,)
    elif host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
        candidates = _LOCALHOST_ADDRESSES  # RFC 6761: always loopback
    else:
        return url  # a name: checked when it is resolved and connected to
    if all(is_blocked(a, allow) for a in candidates):
        raise UrlRefused(
            "blocked_destination", "The link points to a private or reserved network address"
        )
    return url


Resolver = Callable[..., list[tuple[Any, ...]]]


class Guard:
    """The checks the download process applies to everything it does on the network."""

    def __init__(self, allow: Sequence[Network] = (), resolver: Resolver | None = None) -> None:
        self.allow = tuple(allow)
        self._resolve = resolver or socket.getaddrinfo
        self.refusals: list[str] = []

    def _refuse(self, reason: str) -> BlockedDestination:
        self.refusals.append(reason)
        return BlockedDestination(f"blocked destination: {reason}")

    def check_address(self, host: str) -> None:
        addr = parse_ip(host) if isinstance(host, str) else None
        if addr is None:
            # Connecting by name would resolve again inside the C library, unchecked.
            raise self._refuse(f"a connection by name ({host!r}) instead of by address")
        if is_blocked(addr, self.allow):
            raise self._refuse(f"{addr} is not a public address")

    def check_url(self, url: str) -> None:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise self._refuse("a malformed URL") from exc
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            raise self._refuse(f"a request with the {parts.scheme or 'empty'}: scheme")
        if "@" in parts.netloc:
            raise self._refuse("a URL with credentials")

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        """socket.getaddrinfo without the addresses a download may not reach."""
        results = self._resolve(host, port, family, type, proto, flags)
        allowed = [
            r
            for r in results
            if r[0] in (socket.AF_INET, socket.AF_INET6) and not self._blocked(str(r[4][0]))
        ]
        if not allowed:
            raise self._refuse(f"{host} resolves only to addresses that are not public")
        return allowed

    def _blocked(self, host: str) -> bool:
        addr = parse_ip(host)
        return addr is None or is_blocked(addr, self.allow)

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        """sys.addaudithook callback: runs for every audited operation of the process."""
        if event in _SOCKET_EVENTS:
            sock, address = args[0], args[1]
            if address is None:  # sendmsg on a connected socket
                return
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                raise self._refuse(f"a {sock.family!s} socket")
            self.check_address(address[0])
        elif event == "urllib.Request":
            self.check_url(args[0])
        elif event in _PROCESS_EVENTS:
            raise self._refuse(f"starting a program ({event})")


# Optional HTTP stacks yt-dlp would prefer over urllib. curl_cffi connects from C, out of the
# audit hook's sight; requests follows redirects without urllib's per-hop audit event; the
# websockets handler is only used for live streams. Without them every request goes through
# urllib and Python sockets, both audited.
UNAUDITED_MODULES = ("curl_cffi", "requests", "websockets")


def install(allow: Sequence[Network]) -> Guard:
    """Arm the guard in this process for good. Call it before importing yt-dlp."""
    guard = Guard(allow)
    for name in UNAUDITED_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    socket.getaddrinfo = guard.getaddrinfo
    sys.addaudithook(guard.audit)
    return guard
