"""The FastAPI application."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verbatim import __version__
from verbatim.admin.endpoints import router as admin_router
from verbatim.audio.endpoints import router as audio_router
from verbatim.audit import context as audit_context
from verbatim.audit.endpoints import router as audit_router
from verbatim.auth.endpoints import router as auth_router
from verbatim.config import Settings, get_settings
from verbatim.downloads.endpoints import router as downloads_router
from verbatim.engines.endpoints import router as engines_router
from verbatim.engines.process_pool import EnginePool
from verbatim.errors import document_errors, install_error_handlers, register_error_style
from verbatim.events.endpoints import router as events_router
from verbatim.events.hub import JobEventHub, listen_conninfo
from verbatim.health.endpoints import router as health_router
from verbatim.jobs.endpoints import router as jobs_router
from verbatim.kit.body_timeout import BodyIdleTimeoutMiddleware
from verbatim.kit.pagination import cursor_key
from verbatim.kit.schemas import storable_params
from verbatim.library.collections.endpoints import router as collections_router
from verbatim.library.topics.endpoints import router as topics_router
from verbatim.logs import configure_logging
from verbatim.metrics.endpoints import install_collectors
from verbatim.metrics.endpoints import router as metrics_router
from verbatim.metrics.http import MetricsMiddleware
from verbatim.openai_api import errors as openai_errors
from verbatim.openai_api.endpoints import router as openai_router
from verbatim.reconciliation.endpoints import router as reconciliation_router
from verbatim.reprocess.endpoints import router as reprocess_router
from verbatim.runtime import run_runtime
from verbatim.search.endpoints import router as search_router
from verbatim.speakers.endpoints import router as speakers_router
from verbatim.storage.endpoints import router as storage_router
from verbatim.tenancy.endpoints import router as tenants_router
from verbatim.transcriptions.endpoints import router as transcriptions_router
from verbatim.uploads.endpoints import router as uploads_router
from verbatim.usage.endpoints import router as usage_router
from verbatim.versions.endpoints import router as versions_router
from verbatim.web.pages import router as web_router
from verbatim.web.static import mount_static
from verbatim.web.tenants import router as tenant_pages
from verbatim.web.usage import router as usage_page
from verbatim.web.webhooks import router as webhooks_pages
from verbatim.webhooks.endpoints import router as webhooks_router

log = structlog.get_logger("verbatim.http")


class RequestContextMiddleware:
    """Request id in every log line and response; one access log line per request.

    A plain ASGI middleware: it does not buffer bodies, so uploads stream through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        client = scope.get("client")
        audit_context.bind(client[0] if client else None, request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )


def create_app(
    settings: Settings | None = None,
    *,
    with_worker: bool | None = None,
    engine_pool: EnginePool | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    run_worker = settings.run_worker_in_api if with_worker is None else with_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with run_runtime(settings, with_worker=run_worker, engine_pool=engine_pool) as rt:
            app.state.services = rt.services
            # Keyset list cursors are signed with a key derived from the server secret.
            app.state.cursor_key = cursor_key(settings.resolved_secret_key())
            # Live events: one LISTEN connection for every stream this process serves.
            app.state.job_events = JobEventHub(listen_conninfo(rt.services.engine))
            log.info("started", version=__version__, worker_in_process=run_worker)
            try:
                yield
            finally:
                await app.state.job_events.close()

    app = FastAPI(
        title="Verbatim",
        version=__version__,
        description="Self-hosted transcription: upload media, get timed, searchable transcripts.",
        lifespan=lifespan,
        # Query and path strings PostgreSQL cannot store are a 422 before any endpoint runs.
        dependencies=[Depends(storable_params)],
    )
    # Inside the request context (added first = innermost): its 408s carry the request id.
    app.add_middleware(BodyIdleTimeoutMiddleware, idle_timeout_s=settings.body_idle_timeout_s)
    app.add_middleware(RequestContextMiddleware)
    # Outermost: it times the whole answer and reads the route template the router matched.
    app.add_middleware(MetricsMiddleware)
    install_collectors()
    install_error_handlers(app)
    register_error_style(openai_errors.PREFIX, openai_errors.render, openai_errors.SCHEMA)
    routers = (
        health_router,
        auth_router,
        downloads_router,  # before audio's /{audio_id} routes
        audio_router,
        transcriptions_router,
        speakers_router,
        versions_router,
        reconciliation_router,
        reprocess_router,
        jobs_router,
        events_router,
        webhooks_router,
        search_router,
        collections_router,
        topics_router,
        tenants_router,
        audit_router,
        admin_router,
        openai_router,
        engines_router,
        usage_router,
    )
    for router in routers:
        app.include_router(router)
    app.include_router(uploads_router)
    app.include_router(storage_router)  # presigned URLs of the local backend
    app.include_router(metrics_router)
    app.include_router(web_router, include_in_schema=False)  # the web UI's pages
    app.include_router(webhooks_pages, include_in_schema=False)
    app.include_router(usage_page, include_in_schema=False)
    app.include_router(tenant_pages, include_in_schema=False)
    mount_static(app)
    # OpenAPI lists the 401/404/422 (and declared) error answers with the error schema.
    document_errors(app)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory verbatim.app:app_from_env`."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
