"""Errors on the /v1 routes in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Registered as the error style of the `/v1/` prefix (errors.register_error_style), so every error
there (authentication, a body that does not parse, a domain error from a shared service, a 404
or 405 of the router, a 500) is answered this way; the rest of the API keeps its own shape.

OpenAI's SDKs retry 408, 409, 429 and 5xx answers unless told not to by `x-should-retry:
false`; a retried transcription would upload and transcribe the file again, so every error
but 429 and 503 (nothing was started) says not to.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from verbatim.errors import AppError

PREFIX = "/v1/"

# Which form field a shared service's error code is about.
_PARAMS = {
    "file_missing": "file",
    "empty_file": "file",
    "file_too_large": "file",
    "unsupported_media": "file",
    "media_too_long": "file",
    "malformed_multipart": "file",
    "multipart_required": "file",
    "model_unavailable": "model",
    "language_unsupported": "language",
}


class OpenAIError(AppError):
    """An error about one request field (`param`), with extra members for the error object."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int = 400,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details={"param": param, **(extra or {})})
        self.status_code = status


def error_type(status: int) -> str:
    # As OpenAI answers: a bad key is an `invalid_request_error` with code `invalid_api_key`.
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def render(
    request: Request, status: int, code: str, message: str, details: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    extra: dict[str, Any] = {}
    param = _PARAMS.get(code)
    if code == "invalid_token":
        # A bearer that is neither a valid API key nor an access token: to an OpenAI client
        # that is a wrong key.
        code, message = "invalid_api_key", "Incorrect API key provided"
    if isinstance(details, dict):
        extra = {k: v for k, v in details.items() if k != "param"}
        param = details.get("param", param)
    elif isinstance(details, list) and details:  # request validation: the first bad field
        loc = details[0].get("loc") if isinstance(details[0], dict) else None
        if loc:
            param = str(loc[-1])
    body = {
        "error": {
            "message": message,
            "type": error_type(status),
            "param": param,
            "code": code,
            **extra,
        }
    }
    headers = {} if status in (429, 503) else {"x-should-retry": "false"}
    return body, headers


# The error body for OpenAPI (errors.document_errors lists it on every /v1 error answer).
SCHEMA: tuple[str, dict[str, Any]] = (
    "OpenAIErrorResponse",
    {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    },
)
