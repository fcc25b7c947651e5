from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from verbatim.deps import CurrentUser, SessionDep
from verbatim.usage import service
from verbatim.usage.schemas import UsageOut

router = APIRouter(prefix="/api/v1", tags=["usage"])

DEFAULT_DAYS = 30


def _utc(value: datetime) -> datetime:
    # A time without a zone (or a bare date) is read as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@router.get(
    "/usage",
    response_model=UsageOut,
    response_model_by_alias=True,
    responses={422: {"description": "usage_range_invalid, validation_error"}},
)
async def get_usage(
    user: CurrentUser,
    session: SessionDep,
    from_: Annotated[
        datetime | None,
        Query(alias="from", description="Start, inclusive (ISO 8601; default: `to` - 30 days)"),
    ] = None,
    to: Annotated[
        datetime | None, Query(description="End, exclusive (ISO 8601; default: now)")
    ] = None,
    group_by: Annotated[Literal["day", "engine", "model"], Query()] = "day",
) -> object:
    """Your engine runs in [from, to): totals of runs, audio and processing time and estimated
    cost, and the same per day (UTC), engine or engine and model."""
    end = _utc(to) if to is not None else datetime.now(UTC)
    try:
        start = _utc(from_) if from_ is not None else end - timedelta(days=DEFAULT_DAYS)
    except OverflowError:  # `to` in the first days of year 1
        start = datetime.min.replace(tzinfo=UTC)
    period = service.check_period(start, end, group_by)
    return await service.usage_totals(session, user, period)
