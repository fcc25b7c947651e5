"""Readiness checks, run at most once per `VERBATIM_HEALTH_CACHE_S` and shared by every caller.

`/health/ready` is unauthenticated: it shows each check's status only. What went wrong (exception
text naming hosts, buckets, paths) goes to the log and to the admin view, never to anonymous
callers. The cache keeps a probe loop (or an attacker) from writing to storage on every call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import text

from verbatim.engines.models import resolve_model
from verbatim.services import Services

log = structlog.get_logger(__name__)

CHECK_TIMEOUT_S = 5.0


@dataclass
class Report:
    checks: dict[str, dict[str, Any]]
    checked_at: float  # time.time()
    monotonic: float

    @property
    def healthy(self) -> bool:
        return all(c["status"] == "ok" for c in self.checks.values())

    def public(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "error",
            "checks": {name: {"status": c["status"]} for name, c in self.checks.items()},
        }

    def detailed(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "error",
            "checked_at": self.checked_at,
            "age_s": round(time.monotonic() - self.monotonic, 3),
            "checks": self.checks,
        }


@dataclass
class HealthChecker:
    services: Services
    _report: Report | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def report(self, *, max_age_s: float | None = None) -> Report:
        """The cached report, or a new one when it is older than max_age_s (default: the
        configured cache time). Concurrent callers wait for one run."""
        max_age = self.services.settings.health_cache_s if max_age_s is None else max_age_s
        async with self._lock:
            current = self._report
            if current is None or time.monotonic() - current.monotonic >= max_age:
                current = self._report = await self._run()
            return current

    async def _run(self) -> Report:
        services = self.services

        async def database() -> None:
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def queue() -> dict[str, Any]:
            async with services.engine.connect() as conn:
                waiting = await conn.scalar(
                    text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
                )
                workers = await conn.scalar(
                    text(
                        "SELECT count(*) FROM procrastinate_workers "
                        "WHERE last_heartbeat > now() - make_interval(secs => :s)"
                    ),
                    {"s": services.settings.stalled_after_s},
                )
            return {"waiting_jobs": waiting, "live_workers": workers}

        async def storage() -> None:
            await asyncio.to_thread(services.storage.check_writable)

        async def model() -> dict[str, Any]:
            ref = await asyncio.to_thread(
                resolve_model, services.settings.default_model, services.settings.models_dir
            )
            return {"model": ref.name}

        results = await asyncio.gather(
            _check("database", database()),
            _check("queue", queue()),
            _check("storage", storage()),
            _check("model", model()),
        )
        return Report(checks=dict(results), checked_at=time.time(), monotonic=time.monotonic())


async def _check(name: str, coro: Any) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(coro, timeout=CHECK_TIMEOUT_S)
        result: dict[str, Any] = {"status": "ok", **(detail or {})}
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:300]
        log.warning("health_check_failed", check=name, error=error, exc_info=exc)
        result = {"status": "error", "error": error}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return name, result
