"""Collections: a user's ordered lists of transcriptions (one transcription, many collections)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, utcnow
from verbatim.models.transcription import Transcription


class Collection(IdMixin, TimestampMixin, OwnedMixin, Base):
    __tablename__ = "collection"
    # Keyset pages of a user's collections, newest first (migration 0009).
    __table_args__ = (
        Index("ix_collection_user_created", "user_id", text("created_at DESC"), "id"),
        Index("ix_collection_tenant_created", "tenant_id", text("created_at DESC"), "id"),
    )

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )


class TranscriptionCollection(Base):
    """One transcription in one collection, at `position` (a sparse sort key: gaps of
    POSITION_GAP, so a move usually rewrites one row; see library/collections/service.py).

    Deleting the transcription or the collection deletes the row (never the other side).
    Positions are unique per collection (checked at the end of each statement), so a
    renumbering can shift them in one UPDATE and two items can never share a place.
    """

    __tablename__ = "transcription_collection"
    __table_args__ = (
        UniqueConstraint(
            "collection_id",
            "position",
            name="uq_transcription_collection_position",
            deferrable=True,
            initially="IMMEDIATE",
        ),
        Index("ix_transcription_collection_transcription_id", "transcription_id"),
    )

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )
    transcription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transcription.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    added_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )

    transcription: Mapped[Transcription] = relationship(lazy="raise", viewonly=True)
