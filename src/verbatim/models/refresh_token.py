from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin


class RefreshToken(IdMixin, TimestampMixin, OwnedMixin, Base):
    """One issued refresh token; its id is the token's `jti`.

    Tokens descending from one login form a family. Using a token marks it `used_at` and issues
    the next one in the family; presenting a used token again means it was copied, and the
    whole family is revoked.
    """

    __tablename__ = "refresh_token"

    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
