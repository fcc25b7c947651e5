"""Limit/offset pagination over a select, with the total count.

Both bounds are checked at the edge (`Limit`, `Offset` query parameters) and again here, so a
caller can never send PostgreSQL an OFFSET past bigint (a 500 before) or an unbounded LIMIT.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Far past any real library, far below PostgreSQL's bigint.
MAX_OFFSET = 1_000_000_000

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
    check_window(limit, offset)
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = await session.scalars(stmt.limit(limit).offset(offset))
    return list(rows), int(total or 0)
