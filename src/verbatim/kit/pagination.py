"""Pagination: keyset (cursor) pages for lists that grow, and limit/offset for the rest.

Keyset pages (`keyset_paginate`, the one to use for a user's library lists) walk a list ordered
newest first on `(created_at DESC, id ASC)`, each page starting right after the last row of the
previous one. With an index on `(owner, created_at DESC, id)` every page costs the same, the
first and the ten-thousandth alike, and a row inserted meanwhile is never seen twice nor makes
another one skipped. The position travels as `next_cursor`: opaque to clients, signed with a key
derived from the server secret (a cursor that was changed, or made for another list, is a 422
`invalid_cursor`).

- `total` is exact up to `COUNT_CAP` rows (a bounded count: at most COUNT_CAP + 1 index entries
  are read, about a millisecond); past that it is PostgreSQL's estimate for the same filter and
  `total_exact` is false. Counting 100,000 rows on every page was the single largest cost of a
  page (issue 15). `has_more` and `next_cursor` are always exact.
- `offset` still works next to no cursor, bounded by `MAX_KEYSET_OFFSET` (an offset is read and
  thrown away, row by row); beyond it, a 422 `offset_too_large` says to follow `next_cursor`.

Adopting it for a list is one call in the service and one dependency in the endpoint:

    async def list_things(session, user, page: PageRequest) -> KeysetPage:
        stmt = select(Thing).where(visible(Thing, user))  # tenancy.scope
        return await keyset_paginate(session, stmt, page, Thing.created_at, Thing.id)

    @router.get("/things", response_model=CursorPage[ThingOut])
    async def list_things(user: CurrentUser, session: SessionDep, page: PageQuery) -> object:
        return (await service.list_things(session, user, page)).response()

`paginate(session, stmt, limit, offset)` (limit/offset with an exact count) stays for short
lists (API keys, one transcript's segments) and for code written against it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Far past any real library, far below PostgreSQL's bigint.
MAX_OFFSET = 1_000_000_000
# Keyset lists: an offset page reads and discards `offset` rows; past this, use the cursor.
MAX_KEYSET_OFFSET = 10_000
# Keyset lists count exactly up to this many rows, then give PostgreSQL's estimate.
COUNT_CAP = 10_000
MAX_CURSOR_CHARS = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT}")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def check_window(limit: int, offset: int) -> None:
    from verbatim.errors import ValidationFailed

    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise ValidationFailed(
            f"limit must be 1..{MAX_LIMIT} and offset 0..{MAX_OFFSET}",
            code="invalid_page",
        )


async def paginate(
    session: AsyncSession, stmt: Select[Any], limit: int, offset: int
) -> tuple[list[Any], int]:
    """Limit/offset with an exact count: for short lists. Library lists use keyset_paginate."""
    check_window(limit, offset)
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = await session.scalars(stmt.limit(limit).offset(offset))
    return list(rows), int(total or 0)


# --- cursors -----------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cursor_key(secret: str) -> bytes:
    """The key cursors are signed with, derived from the server secret (never the secret)."""
    return hashlib.sha256(b"verbatim.pagination.cursor\x00" + secret.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, scope: str, body: bytes) -> bytes:
    return hmac.new(key, scope.encode() + b"\x00" + body, hashlib.sha256).digest()[:16]


def encode_cursor(key: bytes, scope: str, created_at: datetime, row_id: uuid.UUID) -> str:
    """An opaque position after the row (created_at, id) in the list `scope` (its path)."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    body = f"{micros}:{row_id.hex}".encode()
    return f"{_b64(body)}.{_b64(_mac(key, scope, body))}"


def decode_cursor(key: bytes, scope: str, cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position in `cursor`; InvalidCursor (422) if it is malformed, changed or foreign."""
    from verbatim.errors import ValidationFailed

    def refuse(why: str) -> ValidationFailed:
        return ValidationFailed(
            f"cursor is not valid ({why}); start again without one",
            code="invalid_cursor",
        )

    if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
        raise refuse("malformed")
    body_text, mac_text = cursor.split(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise refuse("malformed") from None
    if not hmac.compare_digest(mac, _mac(key, scope, body)):
        raise refuse("signature does not match")
    try:
        micros_text, id_hex = body.decode().split(":")
        created_at = _EPOCH + timedelta(microseconds=int(micros_text))
        row_id = uuid.UUID(hex=id_hex)
    except (ValueError, OverflowError):
        raise refuse("malformed") from None
    return created_at, row_id


# --- the page request (query parameters) -------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    # Decoded and checked position: rows strictly after it.
    after: tuple[datetime, uuid.UUID] | None = None
    # For next_cursor: the list's scope (its path) and the signing key.
    scope: str = ""
    key: bytes = field(default=b"", repr=False)


async def page_request(  # async: a plain def would run in the thread pool
    request: Request,
    limit: Limit = DEFAULT_LIMIT,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OFFSET,
            description=f"Rows to skip, at most {MAX_KEYSET_OFFSET} (then follow next_cursor); "
            "not with cursor",
        ),
    ] = 0,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_CHARS,
            description="next_cursor of the previous page: the page after it (opaque)",
        ),
    ] = None,
) -> PageRequest:
    """Limit, offset and cursor of a keyset list, checked at the edge (422 with a code)."""
    from verbatim.errors import ValidationFailed

    key: bytes = request.app.state.cursor_key
    scope = request.url.path
    if offset > MAX_KEYSET_OFFSET:
        raise ValidationFailed(
            f"offset is at most {MAX_KEYSET_OFFSET} here; follow next_cursor to go further",
            code="offset_too_large",
            details={"max_offset": MAX_KEYSET_OFFSET},
        )
    after = None
    if cursor:
        if offset:
            raise ValidationFailed("Give either cursor or offset, not both", code="invalid_page")
        after = decode_cursor(key, scope, cursor)
    return PageRequest(limit=limit, offset=offset, after=after, scope=scope, key=key)


PageQuery = Annotated[PageRequest, Depends(page_request)]


# --- keyset pages ------------------------------------------------------------------------------


@dataclass
class KeysetPage:
    items: list[Any]
    total: int
    total_exact: bool
    has_more: bool
    next_cursor: str | None
    limit: int
    offset: int

    def response(self, items: list[Any] | None = None) -> dict[str, Any]:
        """The body of a CursorPage answer (with `items` in place of the page's rows)."""
        return {
            "items": self.items if items is None else items,
            "total": self.total,
            "total_exact": self.total_exact,
            "has_more": self.has_more,
            "next_cursor": self.next_cursor,
            "limit": self.limit,
            "offset": self.offset,
        }


class Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <select>` with the select's bound parameters."""

    inherit_cache = False

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.stmt, **kw)


async def estimate_rows(session: AsyncSession, stmt: Select[Any]) -> int:
    """PostgreSQL's estimate of the rows `stmt` returns (a plan, nothing executed)."""
    plan = (await session.execute(Explain(stmt))).scalar_one()
    if isinstance(plan, str):  # a driver that does not decode json
        import json

        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


async def keyset_paginate(
    session: AsyncSession,
    stmt: Select[Any],
    page: PageRequest,
    created_at: Any,
    id_column: Any,
) -> KeysetPage:
    """One page of `stmt` (a select with its filters, ownership included) newest first.

    `created_at` and `id_column` are the row's columns (e.g. `AudioFile.created_at`,
    `AudioFile.id`); the order is (created_at DESC, id ASC) whatever `stmt` had. `stmt` may
    select entities (with `load_only`) or plain columns, as long as both of these are among
    what a row carries.
    """
    check_window(page.limit, page.offset)
    filtered = stmt.order_by(None)
    ordered = filtered.order_by(created_at.desc(), id_column.asc())
    if page.after is not None:
        after_at, after_id = page.after
        # created_at <= x bounds the index scan; the OR only sorts out rows tied on x.
        condition: ColumnElement[bool] = and_(
            created_at <= after_at,
            or_(created_at < after_at, id_column > after_id),
        )
        ordered = ordered.where(condition)
    # One row more than asked says whether there is a next page.
    result = await session.execute(ordered.limit(page.limit + 1).offset(page.offset))
    rows = list(result.scalars() if _single_entity(stmt) else result.all())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(
            page.key, page.scope, getattr(last, created_at.key), getattr(last, id_column.key)
        )
    total, exact = await _bounded_total(session, filtered, created_at, id_column)
    return KeysetPage(
        items=rows,
        total=total,
        total_exact=exact,
        has_more=has_more,
        next_cursor=next_cursor,
        limit=page.limit,
        offset=page.offset,
    )


def _single_entity(stmt: Select[Any]) -> bool:
    descriptions = stmt.column_descriptions
    return (
        len(descriptions) == 1
        and descriptions[0].get("entity") is not None
        and (descriptions[0].get("expr") is descriptions[0].get("entity"))
    )


async def _bounded_total(
    session: AsyncSession, filtered: Select[Any], created_at: Any, id_column: Any
) -> tuple[int, bool]:
    """Exact up to COUNT_CAP (reading at most COUNT_CAP + 1 index entries), else an estimate.

    An estimate is kept for ESTIMATE_TTL_S per filter and reused: it is labelled an estimate
    anyway, and counting COUNT_CAP + 1 entries then planning the EXPLAIN on every page of a
    large library was a quarter of a list's cost under load (issue 15). Exact totals are
    never reused.
    """
    ids = filtered.with_only_columns(id_column, maintain_column_froms=True)
    # In the list's order: the first COUNT_CAP + 1 entries of the list's index are what is
    # counted, an index-only scan, even where one owner holds most of a table and a
    # sequential scan would otherwise look as cheap.
    capped = ids.order_by(created_at.desc(), id_column.asc()).limit(COUNT_CAP + 1)
    key = _estimate_key(session, ids)
    now = time.monotonic()
    kept = _ESTIMATES.get(key)
    if kept is not None and now - kept[0] < ESTIMATE_TTL_S:
        return kept[1], False
    counted = int(await session.scalar(select(func.count()).select_from(capped.subquery())) or 0)
    if counted <= COUNT_CAP:
        _ESTIMATES.pop(key, None)
        return counted, True
    total = max(await estimate_rows(session, ids), counted)
    if len(_ESTIMATES) >= ESTIMATES_KEPT:
        _ESTIMATES.clear()  # many filters in ESTIMATE_TTL_S: start over rather than grow
    _ESTIMATES[key] = (now, total)
    return total, False


# Over-cap totals per (database, statement shape, bound values): (when counted, total).
_ESTIMATES: dict[tuple[Any, ...], tuple[float, int]] = {}
ESTIMATE_TTL_S = 10.0
ESTIMATES_KEPT = 4096


def _estimate_key(session: AsyncSession, ids: Select[Any]) -> tuple[Any, ...]:
    # SQLAlchemy's own cache key (it computes one to find the compiled statement anyway):
    # the statement's shape, plus the values bound into it, which carry the owner.
    cache_key = ids._generate_cache_key()
    database = id(session.bind)  # the engine: one per database
    if cache_key is None:  # an uncacheable construct: key on its text instead
        return (database, str(ids), COUNT_CAP)
    values = tuple(param.effective_value for param in cache_key.bindparams)
    return (database, cache_key.key, values, COUNT_CAP)
