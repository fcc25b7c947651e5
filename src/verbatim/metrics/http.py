"""HTTP request counts and latency by route template (`/api/v1/audio/{audio_id}`, never the
concrete path: one series per route, not per id). Requests no route matched count as
`unmatched`."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verbatim.metrics.instruments import http_duration, http_requests


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            http_requests.labels(method, template, str(status)).inc()
            http_duration.labels(method, template).observe(time.perf_counter() - started)
