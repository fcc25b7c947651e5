from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base


class RateLimit(Base):
    """A fixed-window counter per key (`login:account:<email sha256>`, `login:address:<ip>`,
    `register:address:<ip>`), shared by every API process through the database."""

    __tablename__ = "rate_limit"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
