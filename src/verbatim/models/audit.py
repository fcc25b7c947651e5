"""The audit trail: one row per security-relevant action, append-only.

No foreign keys: a row outlives the user, tenant or object it names. A trigger (migration
0013) refuses UPDATE and DELETE unless the transaction set `verbatim.audit_purge` (the
retention task, the only delete path).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Index, String, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, TimestampMixin


class AuditLog(IdMixin, TimestampMixin, Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_tenant_created", "tenant_id", text("created_at DESC"), "id"),
        Index("ix_audit_log_created", text("created_at DESC"), "id"),
    )

    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(200))
    client_address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
