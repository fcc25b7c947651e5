"""GET /metrics in Prometheus's text format, for a bearer token (VERBATIM_METRICS_TOKEN).

Without a token set, the route answers 404: metrics are off on the API port, and may still be
served on a separate port bound to a private interface (VERBATIM_METRICS_PORT, see serve_port).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
from functools import cache

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from verbatim.config import Settings
from verbatim.deps import ServicesDep
from verbatim.errors import NotFound, Unauthorized
from verbatim.metrics import cluster
from verbatim.services import Services

log = structlog.get_logger(__name__)
router = APIRouter(tags=["operations"])

_registered = threading.Lock()
_done = False


def install_collectors() -> None:
    global _done
    with _registered:
        if not _done:
            REGISTRY.register(cluster.ClusterCollector())
            _done = True


@cache
def exposition_registry() -> CollectorRegistry:
    """What /metrics and the metrics port show. Several API processes (`serve --api-workers`)
    each write their counters to PROMETHEUS_MULTIPROC_DIR; any one of them answers with the
    sum over all, plus the cluster gauges (read from the database)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(cluster.ClusterCollector())
    return registry


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    token = services.settings.metrics_token
    if not token:
        raise NotFound("Metrics are not served on this port", code="metrics_disabled")
    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
        raise Unauthorized("A valid metrics token is required", code="invalid_metrics_token")
    await cluster.refresh(services)
    body = await asyncio.to_thread(generate_latest, exposition_registry())
    # The classic text format (0.0.4), which every Prometheus version reads; the metric names
    # are all legacy-valid, so the body is the same in 1.0.0.
    return Response(body, headers={"content-type": CONTENT_TYPE_PLAIN_0_0_4})


async def refresh_forever(services: Services, every_s: float) -> None:
    """Keep the cluster snapshot fresh for the separate metrics port (which cannot await)."""
    while True:
        try:
            await cluster.refresh(services, force=True)
        except Exception as exc:  # the database is away: keep the last figures, try again
            log.warning("metrics_refresh_failed", error=str(exc)[:200])
        await asyncio.sleep(every_s)


def serve_port(settings: Settings) -> object | None:
    """prometheus-client's own HTTP server on VERBATIM_METRICS_HOST:PORT (no token: bind it to
    an interface only Prometheus reaches). Returns the server, or None when no port is set."""
    if settings.metrics_port is None:
        return None
    from prometheus_client import start_http_server

    server, _ = start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=exposition_registry()
    )
    log.info("metrics_port", host=settings.metrics_host, port=settings.metrics_port)
    return server
