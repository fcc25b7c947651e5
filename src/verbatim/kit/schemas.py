"""Shared request and response shapes.

Request bodies derive from `RequestModel`: strict types (`"5"` is not an integer, `"yes"` is not
a boolean), unknown fields refused, and every string checked for what PostgreSQL text cannot hold
(NUL, lone UTF-16 surrogates), so bad input is a 422 and never a database error.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request

from verbatim.kit.pagination import MAX_LIMIT, MAX_OFFSET

T = TypeVar("T")


def text_problem(value: str) -> str | None:
    """Why PostgreSQL text (UTF-8) cannot store `value`, or None when it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def _check_strings(value: Any) -> Any:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    return value


class RequestModel(BaseModel):
    """Base of every request body.

    strict: JSON types are taken as sent; enum and UUID fields opt back in to lax parsing with
    `Strict(False)` (FastAPI validates the decoded JSON in Python mode, where strict would ask
    for enum and UUID instances). extra="forbid": a misspelt option is an error, not silently
    ignored.
    """

    model_config = ConfigDict(strict=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _check_strings(value)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class CursorPage(Page[T], Generic[T]):
    """A keyset list page (kit.pagination.keyset_paginate)."""

    total_exact: bool = Field(
        description="true: total is exact; false: past 10,000 rows it is PostgreSQL's estimate"
    )
    has_more: bool = Field(description="Whether another page follows this one")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page (opaque)"
    )


class PageParams(BaseModel):
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. audio_not_found")
    message: str
    details: Any = None
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """Every error answer: `{"error": {"code", "message", "details", "request_id"}}`."""

    error: ErrorDetail


async def storable_params(request: Request) -> None:
    """App-wide dependency: query and path strings must be storable text too.

    `%00` in a filter reached PostgreSQL as a NUL and came back as a 500; it is a 422
    `invalid_input` before any endpoint code runs.
    """
    from verbatim.errors import InvalidInput

    where: list[tuple[str, str, str]] = [
        ("query", k, v) for k, v in request.query_params.multi_items()
    ]
    where += [("path", k, str(v)) for k, v in request.path_params.items()]
    for place, name, value in where:
        problem = text_problem(name) or text_problem(value)
        if problem is not None:
            raise InvalidInput(
                f"{place} parameter {name!r} {problem}",
                details=[{"loc": [place, name], "msg": problem}],
            )
