from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin


class ApiKey(IdMixin, TimestampMixin, OwnedMixin, Base):
    __tablename__ = "api_key"

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # The prefix identifies a key in lists; only the SHA-256 of the whole secret is stored.
    prefix: Mapped[str] = mapped_column(String(20), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
