"""webhook_endpoint (where to send what) and webhook_delivery (one message to one endpoint)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, utcnow


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # queued, or waiting for its next attempt
    succeeded = "succeeded"
    failed = "failed"  # every attempt failed, or it could not be sent at all


class WebhookEndpoint(IdMixin, TimestampMixin, OwnedMixin, Base):
    __tablename__ = "webhook_endpoint"

    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, server_default="")
    events: Mapped[list[str]] = mapped_column(ARRAY(String(50)), nullable=False)
    # The signing key (whsec_ + base64), shown once at creation; needed in clear to sign.
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(100))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Messages in a row that failed for good (reset by a success).
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )


class WebhookDelivery(IdMixin, TimestampMixin, OwnedMixin, Base):
    """One message to one endpoint. Its id is the `webhook-id` of every attempt and
    redelivery, so a receiver can drop duplicates."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_endpoint_created", "endpoint_id", text("created_at DESC"), "id"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False
    )
    event_type: Mapped[str] = mapped_column(String(50), nullable=False)
    # The message body as sent: {"type", "timestamp", "data"}.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0", default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_response_ms: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Every attempt: {"at", "status_code", "response_ms", "error"}; the newest 50 are kept.
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, default=list)
    # The job carrying the current (re)delivery.
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("job.id", ondelete="SET NULL"), index=True
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"
