from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Enum, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, TimestampMixin


class TenantKind(enum.StrEnum):
    # Every user's own library: one member (its owner), never shared (decision 0019).
    personal = "personal"
    # A team: members with roles share its library.
    organisation = "organisation"


class Tenant(IdMixin, TimestampMixin, Base):
    __tablename__ = "tenant"

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[TenantKind] = mapped_column(
        Enum(TenantKind, name="tenant_kind", native_enum=False, length=20),
        default=TenantKind.personal,
        server_default=text("'personal'"),
        nullable=False,
    )
    # Quotas: NULL takes the VERBATIM_QUOTA_* default; 0 means unlimited (quotas/service.py).
    quota_storage_bytes: Mapped[int | None] = mapped_column(BigInteger)
    quota_concurrent_jobs: Mapped[int | None] = mapped_column(Integer)
    quota_uploads_per_hour: Mapped[int | None] = mapped_column(Integer)
    quota_audio_minutes_per_month: Mapped[int | None] = mapped_column(Integer)
