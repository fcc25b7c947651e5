"""Domain errors with a stable code, and the one place that renders every error for clients."""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    message = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "Not found"


class Unauthorized(AppError):
    status_code = 401
    code = "not_authenticated"
    message = "Authentication required"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    message = "Not allowed"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = "Conflict"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"
    message = "Invalid input"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "file_too_large"
    message = "The file is larger than the upload limit"


class UnsupportedMedia(AppError):
    status_code = 415
    code = "unsupported_media"
    message = "The file is not decodable audio or video with an audio track"


class MediaTooLong(AppError):
    status_code = 422
    code = "media_too_long"
    message = "The media is longer than the duration limit"


class RangeNotSatisfiable(AppError):
    status_code = 416
    code = "range_not_satisfiable"
    message = "Requested range not satisfiable"


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after_s: int) -> None:
        super().__init__(
            message,
            details={"retry_after_s": retry_after_s},
            headers={"Retry-After": str(retry_after_s)},
        )


class RequestTimeout(AppError):
    status_code = 408
    code = "request_timeout"
    message = "The request body stopped arriving"


class DatabaseBusy(AppError):
    """Every pooled database connection stayed in use for the whole pool timeout."""

    status_code = 503
    code = "database_busy"
    message = "The service is busy; retry shortly"
    retry_after_s = 2

    def __init__(self) -> None:
        super().__init__(
            details={"retry_after_s": self.retry_after_s},
            headers={"Retry-After": str(self.retry_after_s)},
        )


def _body(request: Request, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": getattr(request.state, "request_id", None),
        }
    }


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "file_too_large",
    415: "unsupported_media",
    429: "rate_limited",
}


def error_response(request: Request, exc: AppError) -> JSONResponse:
    """The error as a response, for an endpoint that must answer it and still commit (a
    rejected direct upload records why it was rejected)."""
    return JSONResponse(
        _body(request, exc.code, exc.message, exc.details),
        status_code=exc.status_code,
        headers=exc.headers,
    )


class UnhandledErrorMiddleware:
    """Turns an unexpected exception into the 500 error body, logged once with its traceback.

    Starlette's ServerErrorMiddleware calls the app's `Exception` handler and then re-raises, so
    the server logs the same exception a second time ("Exception in ASGI application"). This
    layer, inside it, answers and does not re-raise. An exception after the response has started
    cannot be answered: it is logged, and the server closes the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            log.exception("unhandled_error", path=scope.get("path"), method=scope.get("method"))
            if started:
                return
            request = Request(scope)
            response = JSONResponse(
                _body(request, "internal_error", "Internal server error"), status_code=500
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    # Outermost of the app's own middleware (add_middleware prepends), so the request id is set
    # and the access line written by the time it answers.
    app.add_middleware(UnhandledErrorMiddleware)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(
            _body(request, exc.code, exc.message, exc.details),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            _body(request, "validation_error", "Invalid input", details), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(
            _body(request, code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(sqlalchemy.exc.TimeoutError)
    async def _pool_timeout(request: Request, exc: sqlalchemy.exc.TimeoutError) -> JSONResponse:
        log.warning("database_pool_exhausted", path=request.url.path)
        return error_response(request, DatabaseBusy())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only by an exception outside UnhandledErrorMiddleware. The trace goes to the
        # log, never to the client.
        log.exception("unhandled_error", path=request.url.path)
        return JSONResponse(
            _body(request, "internal_error", "Internal server error"), status_code=500
        )
