"""Liveness (the process answers) and readiness (everything it depends on works).

`/health/ready` is public and says only which checks pass; `/api/v1/admin/health` gives an admin
the details (errors, latencies, queue depth). Both read the same cached report (health/checks.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from verbatim.deps import CurrentUser, ServicesDep
from verbatim.errors import Forbidden
from verbatim.health.checks import HealthChecker
from verbatim.models import Role

router = APIRouter(tags=["health"])


def _checker(request: Request, services: ServicesDep) -> HealthChecker:
    checker: HealthChecker | None = getattr(request.app.state, "health_checker", None)
    if checker is None or checker.services is not services:
        checker = request.app.state.health_checker = HealthChecker(services)
    return checker


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(request: Request, services: ServicesDep) -> JSONResponse:
    report = await _checker(request, services).report()
    return JSONResponse(report.public(), status_code=200 if report.healthy else 503)


@router.get("/api/v1/admin/health", tags=["admin"])
async def admin_health(
    request: Request,
    services: ServicesDep,
    user: CurrentUser,
    refresh: Annotated[bool, Query(description="run the checks now, ignoring the cache")] = False,
) -> dict[str, Any]:
    """Readiness with details, for operators (role admin; others get 403 `forbidden`)."""
    if user.role != Role.admin:
        raise Forbidden("Admin role required")
    report = await _checker(request, services).report(max_age_s=0 if refresh else None)
    return report.detailed()
