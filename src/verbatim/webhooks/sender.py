"""One signed POST to a webhook endpoint, behind the downloads' network guard.

Every attempt opens a new connection, and the address it dials is the one the guard approved
at that moment (`downloads.guard.Guard.getaddrinfo`: private, loopback, link-local and metadata
addresses are refused unless the operator allow-lists them; metadata always). Connecting to the
checked address (TLS still verifies the URL's host name) means DNS rebinding between check and
connect cannot reach another address. Redirects are not followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx
from standardwebhooks import Webhook

from verbatim import __version__
from verbatim.downloads.guard import BlockedDestination, Guard, Network

USER_AGENT = f"Verbatim-Webhooks/{__version__}"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer, resolving through the guard and dialling only what it allows."""

    def __init__(self, allow: Sequence[Network]) -> None:
        self.guard = Guard(allow)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.to_thread(
                self.guard.getaddrinfo, host, port, 0, socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        error: Exception | None = None
        for info in infos:
            try:
                return await self._inner.connect_tcp(
                    str(info[4][0]), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"cannot connect to {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedDestination("blocked destination: a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~25 ms of CPU: once per process, not once per attempt.
    return httpx.create_ssl_context()


def guarded_client(allow: Sequence[Network], timeout_s: float) -> httpx.AsyncClient:
    # httpx has no public switch for the network backend: give its transport a pool that uses
    # ours (same options otherwise). tests/webhooks/test_ssrf.py proves the guard applies.
    transport = httpx.AsyncHTTPTransport(retries=0, verify=_ssl_context())
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(), network_backend=GuardedBackend(allow)
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment would be dialled instead, unchecked
        headers={"User-Agent": USER_AGENT},
    )


@dataclass
class Attempt:
    status_code: int | None
    response_ms: float
    error: str | None  # a stable reason: http_500, timeout, connection_error, blocked_destination

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def log_entry(self) -> dict[str, Any]:
        return {
            "at": datetime.now(UTC).isoformat(),
            "status_code": self.status_code,
            "response_ms": round(self.response_ms, 1),
            "error": self.error,
        }


def body_of(payload: dict[str, Any]) -> str:
    """The exact bytes signed and sent (compact JSON, keys in a stable order)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def signed_headers(secret: str, webhook_id: str, body: str, now: datetime) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id=webhook_id, timestamp=now, data=body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def send(
    url: str,
    secret: str,
    webhook_id: str,
    payload: dict[str, Any],
    *,
    allow: Sequence[Network],
    timeout_s: float,
) -> Attempt:
    """POST the message once; never raises for what the destination does."""
    body = body_of(payload)
    headers = signed_headers(secret, webhook_id, body, datetime.now(UTC))
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        async with guarded_client(allow, timeout_s) as client:
            # The whole attempt (connect, send, answer) within the timeout, slow-drip included.
            async with asyncio.timeout(timeout_s):
                response = await client.post(url, content=body.encode(), headers=headers)
    except BlockedDestination:
        return Attempt(None, elapsed(), "blocked_destination")
    except (TimeoutError, httpx.TimeoutException):
        return Attempt(None, elapsed(), "timeout")
    except httpx.HTTPError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, BlockedDestination) or "blocked destination" in str(exc):
            return Attempt(None, elapsed(), "blocked_destination")
        return Attempt(None, elapsed(), "connection_error")
    code = response.status_code
    error = None if 200 <= code < 300 else f"http_{code}"
    if 300 <= code < 400:
        error = "redirect_not_followed"
    return Attempt(code, elapsed(), error)
