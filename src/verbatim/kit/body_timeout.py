"""A request body that stops arriving times out.

A plain ASGI middleware around `receive`: while the body is incomplete, each wait for the next
chunk is bounded by `idle_timeout_s`. When it runs out, `receive` raises `RequestTimeout`, which
unwinds the endpoint (an upload removes its temporary file, nothing is stored) and is rendered
as 408 `request_timeout`. Only idle time counts: a slow client that keeps sending is never cut
off (the size limits bound the total). Bodies are not buffered; uploads stream through.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verbatim.errors import RequestTimeout

log = structlog.get_logger(__name__)


class BodyIdleTimeoutMiddleware:
    def __init__(self, app: ASGIApp, idle_timeout_s: float) -> None:
        self.app = app
        self.idle_timeout_s = idle_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        started = False
        timeout: RequestTimeout | None = None
        replaced = False

        async def receive_with_timeout() -> Message:
            nonlocal body_done, timeout
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.idle_timeout_s)
            except TimeoutError:
                log.info("request_body_timeout", path=scope["path"], s=self.idle_timeout_s)
                timeout = RequestTimeout(
                    f"No part of the request body arrived for {self.idle_timeout_s:g} s",
                    details={"idle_timeout_s": self.idle_timeout_s},
                )
                raise timeout from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_tracking(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the rest of a response we answered 408 instead
            if message["type"] == "http.response.start":
                started = True
                if timeout is not None and message["status"] != timeout.status_code:
                    # Whoever read the body turned the timeout into another error (FastAPI
                    # answers 400 for any failure while parsing a JSON body): it is a 408.
                    replaced = True
                    await _send_408(scope, send, timeout)
                    return
            await send(message)

        try:
            await self.app(scope, receive_with_timeout, send_tracking)
        except RequestTimeout as exc:
            # Raised where no handler renders it (outside an endpoint): answer it here.
            if replaced:
                return
            if started:
                raise
            await _send_408(scope, send, exc)


async def _send_408(scope: Scope, send: Send, exc: RequestTimeout) -> None:
    request_id = scope.get("state", {}).get("request_id")
    body = json.dumps(
        {
            "error": {
                "code": exc.code,
                "message": exc.message,
                "details": exc.details,
                "request_id": request_id,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
