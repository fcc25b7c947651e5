"""Domain errors with a stable code, and the one place that renders every error for clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
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


class InvalidInput(ValidationFailed):
    """Input the database cannot store or compare (NUL in text, a number past bigint)."""

    code = "invalid_input"
    message = "The input contains characters or values that cannot be stored"


def _body(request: Request, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": getattr(request.state, "request_id", None),
        }
    }


# Routes that answer errors in another shape (the OpenAI-compatible /v1 API): a path prefix and
# a function giving the body and any extra headers for (request, status, code, message, details).
ErrorRenderer = Callable[[Request, int, str, str, Any], tuple[dict[str, Any], dict[str, str]]]
_styles: list[tuple[str, ErrorRenderer]] = []
# For OpenAPI: the schema name and JSON schema of each style's error body.
_style_schemas: dict[str, tuple[str, dict[str, Any]]] = {}


def register_error_style(
    prefix: str,
    renderer: ErrorRenderer,
    schema: tuple[str, dict[str, Any]] | None = None,
) -> None:
    if all(p != prefix for p, _ in _styles):
        _styles.append((prefix, renderer))
    if schema is not None:
        _style_schemas[prefix] = schema


def error_json(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Every error answer: the standard body, or the shape of the route's style."""
    path = request.scope.get("path", "")
    for prefix, renderer in _styles:
        if path.startswith(prefix):
            body, extra = renderer(request, status, code, message, details)
            return JSONResponse(body, status_code=status, headers={**(headers or {}), **extra})
    return JSONResponse(_body(request, code, message, details), status_code=status, headers=headers)


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
    return error_json(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)


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
            response = error_json(request, 500, "internal_error", "Internal server error")
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    # Outermost of the app's own middleware (add_middleware prepends), so the request id is set
    # and the access line written by the time it answers.
    app.add_middleware(UnhandledErrorMiddleware)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return error_json(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return error_json(request, 422, "validation_error", "Invalid input", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_json(request, exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(sqlalchemy.exc.TimeoutError)
    async def _pool_timeout(request: Request, exc: sqlalchemy.exc.TimeoutError) -> JSONResponse:
        log.warning("database_pool_exhausted", path=request.url.path)
        return error_response(request, DatabaseBusy())

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        # Last resort: request models and parameters refuse such input before any query, so
        # reaching this means a field was missed. Still the client's input, never a 500.
        log.warning("database_data_error", path=request.url.path, error=str(exc.orig)[:200])
        err = InvalidInput()
        return error_json(request, err.status_code, err.code, err.message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only by an exception outside UnhandledErrorMiddleware. The trace goes to the
        # log, never to the client.
        log.exception("unhandled_error", path=request.url.path)
        return error_json(request, 500, "internal_error", "Internal server error")


# --- 405 and OpenAPI ---------------------------------------------------------------------------


def allowed_methods(request: Request) -> list[str]:
    """Every method the path answers, for `Allow` on a 405.

    Starlette lists only the methods of the first route whose path matched; one path is often
    served by several routes (GET and POST on a collection). Routes with the same path template
    as the first match are merged.
    """
    scope = dict(request.scope)
    template: str | None = None
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        route_methods = route.methods
        if route_methods is None:
            continue
        match, _ = route.matches(scope)
        if match is Match.NONE:
            continue
        path = getattr(route, "path", None)
        if template is None:
            template = path
        if path == template:
            methods |= set(route_methods)
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


_ERROR_DESCRIPTIONS = {
    400: "bad_request: a body that does not parse (malformed_multipart, file_missing, ...)",
    401: "not_authenticated, invalid_token, invalid_api_key",
    403: "forbidden",
    404: "not_found (the id does not exist or is not yours)",
    409: "conflict",
    410: "gone",
    413: "file_too_large",
    415: "unsupported_media",
    416: "range_not_satisfiable",
    422: "validation_error, invalid_input, or a domain code in error.code",
    429: "rate_limited (with Retry-After)",
    503: "service unavailable",
}


def document_errors(app: FastAPI) -> None:
    """List in OpenAPI the error answers routes really give, with the error schema.

    401 on every operation that needs a caller (it has `security`), 404 on every operation with a
    path parameter, 422 (our envelope, not FastAPI's default shape) on every operation that takes
    input; codes a route declares itself (409, 413, 415, 429, ...) get the error schema too.
    """
    from fastapi.openapi.utils import get_openapi

    from verbatim.kit.schemas import ErrorResponse

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs", {}))
        components["ErrorResponse"] = error_schema
        standard = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        for name, style_schema in _style_schemas.values():
            components[name] = style_schema
        for path, operations in schema.get("paths", {}).items():
            ref = standard
            for prefix, (name, _) in _style_schemas.items():
                if path.startswith(prefix):
                    ref = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                codes = {int(c) for c in responses if c.isdigit() and int(c) >= 400}
                if operation.get("security"):
                    codes.add(401)
                if "{" in path:
                    codes.add(404)
                if operation.get("parameters") or operation.get("requestBody"):
                    codes.add(422)
                if operation.get("requestBody"):
                    codes.add(400)  # a body that does not parse
                for status in sorted(codes):
                    entry = responses.setdefault(str(status), {})
                    if status == 422 or "content" not in entry:
                        entry["content"] = ref
                    if status == 422 or not entry.get("description"):
                        entry["description"] = _ERROR_DESCRIPTIONS.get(status, "error")
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
