"""The usage page: the caller's engine runs over a date range, by day, engine or model, from
`usage.service` (the same figures as `GET /api/v1/usage`). Dates are whole UTC days, both ends
included, as a person reads a range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from verbatim.deps import ServicesDep, SessionDep
from verbatim.errors import AppError, ValidationFailed
from verbatim.usage import service
from verbatim.web.pages import _to_signin, _viewer, render

router = APIRouter()
DEFAULT_DAYS = 30
GROUPS = ("day", "engine", "model")


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        message = f"{name}: not a date (YYYY-MM-DD)"
        raise ValidationFailed(message, code="usage_date_invalid") from None


@router.get("/usage")
async def usage_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    q = request.query_params
    today = datetime.now(UTC).date()
    group_by = q.get("group_by", "day")
    entered = {
        "from": q.get("from") or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
        "to": q.get("to") or today.isoformat(),
        "group_by": group_by if group_by in GROUPS else "day",
    }
    try:
        first, last = _day(entered["from"][:20], "From"), _day(entered["to"][:20], "To")
        period = service.check_period(
            datetime(first.year, first.month, first.day, tzinfo=UTC),
            datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1),
            group_by,
        )
        usage = await service.usage_totals(session, viewer.user, period)
    except AppError as exc:
        # The service speaks of the API's half-open range; the form's days are both included.
        message = "From must not be after To" if exc.code == "usage_range_invalid" else exc.message
        return render(
            request,
            "usage.html",
            viewer,
            exc.status_code,
            active="usage",
            entered=entered,
            groups=GROUPS,
            usage=None,
            error=message,
        )
    return render(
        request, "usage.html", viewer, active="usage", entered=entered, groups=GROUPS, usage=usage
    )
