"""One row per engine run: who ran what on how much audio, and what it is estimated to cost."""

from __future__ import annotations

import uuid

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin


class UsageEvent(IdMixin, TimestampMixin, OwnedMixin, Base):
    __tablename__ = "usage_event"
    # A caller's usage over a period (GET /api/v1/usage), newest first; tenants' views later.
    __table_args__ = (
        Index("ix_usage_event_user_created", "user_id", sql_text("created_at DESC")),
        Index("ix_usage_event_tenant_created", "tenant_id", sql_text("created_at DESC")),
    )

    # Kept when the transcription is deleted: usage already happened and was paid for.
    transcription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("transcription.id", ondelete="SET NULL")
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    engine: Mapped[str] = mapped_column(String(50), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    audio_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    processing_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    # Estimated from VERBATIM_ENGINE_PRICES at the time of the run (USD); never recomputed.
    price_per_minute: Mapped[float] = mapped_column(Float, nullable=False)
    cost_estimate: Mapped[float] = mapped_column(Float, nullable=False)
