"""Usage events (one per engine run) and the caller's totals over a period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.engines.base import EngineResult
from verbatim.engines.registry import price_per_minute
from verbatim.errors import ValidationFailed
from verbatim.models import Job, Transcription, UsageEvent, User

GROUPS = ("day", "engine", "model")


def record_usage(
    settings: Settings,
    session: AsyncSession,
    transcription: Transcription,
    job: Job,
    result: EngineResult,
) -> UsageEvent:
    """Added to the caller's transaction (the one completing the transcription)."""
    audio_seconds = float(result.duration or transcription.duration or 0.0)
    price = price_per_minute(settings, transcription.engine, transcription.model_name)
    event = UsageEvent(
        user_id=transcription.user_id,
        tenant_id=transcription.tenant_id,
        transcription_id=transcription.id,
        job_id=job.id,
        engine=transcription.engine,
        model=transcription.model_name,
        audio_seconds=round(audio_seconds, 3),
        processing_seconds=round(result.processing_time_s, 3),
        price_per_minute=price,
        cost_estimate=round(price * audio_seconds / 60.0, 6),
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class UsagePeriod:
    start: datetime
    end: datetime
    group_by: str


def check_period(start: datetime, end: datetime, group_by: str) -> UsagePeriod:
    if group_by not in GROUPS:
        raise ValidationFailed(
            f"Unknown group_by {group_by!r}",
            code="usage_group_invalid",
            details={"supported": list(GROUPS)},
        )
    if start >= end:
        raise ValidationFailed(
            "`from` must be earlier than `to`",
            code="usage_range_invalid",
            details={"from": start.isoformat(), "to": end.isoformat()},
        )
    return UsagePeriod(start, end, group_by)


async def usage_totals(session: AsyncSession, user: User, period: UsagePeriod) -> dict[str, Any]:
    """The caller's own runs in [from, to): totals and one row per day, engine or model."""
    in_period = (
        UsageEvent.user_id == user.id,
        UsageEvent.created_at >= period.start,
        UsageEvent.created_at < period.end,
    )
    measures = (
        func.count().label("runs"),
        func.coalesce(func.sum(UsageEvent.audio_seconds), 0.0).label("audio_seconds"),
        func.coalesce(func.sum(UsageEvent.processing_seconds), 0.0).label("processing_seconds"),
        func.coalesce(func.sum(UsageEvent.cost_estimate), 0.0).label("cost_estimate"),
    )
    if period.group_by == "day":
        day = func.to_char(func.timezone("UTC", UsageEvent.created_at), "YYYY-MM-DD")
        keys: tuple[Any, ...] = (day.label("day"), literal(None).label("engine"))
        group: tuple[Any, ...] = (day,)
    elif period.group_by == "engine":
        keys = (literal(None).label("day"), UsageEvent.engine.label("engine"))
        group = (UsageEvent.engine,)
    else:
        keys = (
            literal(None).label("day"),
            UsageEvent.engine.label("engine"),
            UsageEvent.model.label("model"),
        )
        group = (UsageEvent.engine, UsageEvent.model)
    rows = (
        await session.execute(
            select(*keys, *measures).where(*in_period).group_by(*group).order_by(*group)
        )
    ).all()
    total = (await session.execute(select(*measures).where(*in_period))).one()
    groups = []
    for row in rows:
        mapping = row._mapping
        if period.group_by == "day":
            key, extra = mapping["day"], {"day": mapping["day"]}
        elif period.group_by == "engine":
            key, extra = mapping["engine"], {"engine": mapping["engine"]}
        else:
            key = f"{mapping['engine']}/{mapping['model']}"
            extra = {"engine": mapping["engine"], "model": mapping["model"]}
        groups.append({"key": key, **extra, **_figures(mapping)})
    return {
        "from": period.start,
        "to": period.end,
        "group_by": period.group_by,
        "currency": "USD",
        "total": _figures(total._mapping),
        "groups": groups,
    }


def _figures(row: Any) -> dict[str, Any]:
    audio = float(row["audio_seconds"])
    return {
        "runs": int(row["runs"]),
        "audio_seconds": round(audio, 3),
        "audio_minutes": round(audio / 60.0, 3),
        "processing_seconds": round(float(row["processing_seconds"]), 3),
        "cost_estimate": round(float(row["cost_estimate"]), 6),
    }
