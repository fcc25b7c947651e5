from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class UsageFigures(BaseModel):
    runs: int
    audio_seconds: float
    audio_minutes: float
    processing_seconds: float
    cost_estimate: float = Field(description="Estimated from per-engine prices per minute (USD)")


class UsageGroup(UsageFigures):
    key: str = Field(description="The day (YYYY-MM-DD, UTC), the engine, or engine/model")
    day: str | None = None
    engine: str | None = None
    model: str | None = None


class UsageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    group_by: str
    currency: str
    total: UsageFigures
    groups: list[UsageGroup]
