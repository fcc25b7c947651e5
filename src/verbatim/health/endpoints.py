"""Liveness (the process answers) and readiness (everything it depends on works)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from verbatim.deps import ServicesDep
from verbatim.engines.models import resolve_model

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def _check(name: str, coro: Any) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(coro, timeout=5)
        result: dict[str, Any] = {"status": "ok", **(detail or {})}
    except Exception as exc:
        result = {"status": "error", "error": f"{exc.__class__.__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return name, result


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
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

    checks = dict(
        await asyncio.gather(
            _check("database", database()),
            _check("queue", queue()),
            _check("storage", storage()),
            _check("model", model()),
        )
    )
    healthy = all(c["status"] == "ok" for c in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "error", "checks": checks},
        status_code=200 if healthy else 503,
    )
