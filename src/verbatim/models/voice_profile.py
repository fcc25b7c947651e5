from __future__ import annotations

from datetime import datetime

from pgvector.sqlalchemy import Vector
from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, utcnow
from verbatim.models.transcription import VOICE_DIMENSIONS


class VoiceProfile(IdMixin, TimestampMixin, OwnedMixin, Base):
    """A named voice of one user: the mean of the speaker centroids saved under this name.

    Only the embedding is kept, never audio; deleting the row deletes the embedding.
    """

    __tablename__ = "voice_profile"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    centroid: Mapped[list[float]] = mapped_column(Vector(VOICE_DIMENSIONS), nullable=False)
    # How many speakers were averaged into the centroid.
    samples: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )
