"""Calls to a provider's HTTP API: timeouts on every call, retries for 429, 5xx and network
errors with exponential backoff that honours Retry-After, and stable error codes.

- 401/403: `engine_auth_failed`, permanent (the job fails at once; retrying cannot help).
- 429/5xx/network after the last retry: transient (`engine_rate_limited`, `engine_server_error`,
  `engine_unreachable`): the job lifecycle schedules another attempt, which resumes from the
  stored provider job id.
- any other 4xx: `engine_rejected`, permanent, with the provider's message.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from verbatim.config import Settings
from verbatim.engines.base import EngineError

log = structlog.get_logger(__name__)


class ProviderClient:
    def __init__(
        self, settings: Settings, provider: str, base_url: str, headers: dict[str, str]
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(settings.engine_http_timeout_s),
            follow_redirects=False,
        )
        self.sleep = asyncio.sleep  # tests may observe the waits

    async def aclose(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: Callable[[], dict[str, Any]] | None = None,
        call_timeout_s: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`body()` makes fresh content/files arguments for each try (a file is re-read)."""
        retries = self.settings.engine_max_retries
        for attempt in range(retries + 1):
            last = attempt == retries
            extra = body() if body is not None else {}
            try:
                response = await self.client.request(
                    method,
                    url,
                    timeout=httpx.USE_CLIENT_DEFAULT if call_timeout_s is None else call_timeout_s,
                    **kwargs,
                    **extra,
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if last:
                    raise EngineError(
                        "engine_unreachable",
                        f"{self.provider} did not answer: {exc.__class__.__name__} {exc}",
                        transient=True,
                    ) from exc
                await self._wait(attempt, None, f"{exc.__class__.__name__}")
                continue
            status = response.status_code
            if status in (401, 403):
                raise EngineError(
                    "engine_auth_failed",
                    f"{self.provider} refused the credentials ({status}): {error_text(response)}",
                )
            if status == 429 or status >= 500:
                if last:
                    raise EngineError(
                        "engine_rate_limited" if status == 429 else "engine_server_error",
                        f"{self.provider} answered {status} {retries + 1} times: "
                        f"{error_text(response)}",
                        transient=True,
                    )
                await self._wait(attempt, retry_after(response), str(status))
                continue
            if status >= 400:
                raise EngineError(
                    "engine_rejected",
                    f"{self.provider} refused the request ({status}): {error_text(response)}",
                )
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _wait(self, attempt: int, hinted: float | None, why: str) -> None:
        cap = self.settings.engine_retry_max_s
        if hinted is not None:
            delay = min(hinted, cap)
        else:
            ceiling = min(cap, self.settings.engine_retry_base_s * 2**attempt)
            delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter
        log.info("engine_http_retry", provider=self.provider, reason=why, in_s=round(delay, 2))
        await self.sleep(delay)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_text(response: httpx.Response) -> str:
    """The provider's own message: {"error": "..."} (AssemblyAI), {"error": {"message"}}
    (OpenAI, Google), {"message": ...} (Yandex); else the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(data, dict):
        error = data.get("error", data.get("message"))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)[:300]
    return str(data)[:300]
