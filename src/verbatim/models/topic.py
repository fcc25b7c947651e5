"""Topics: a user's own subjects, suggested for transcriptions by embedding similarity and
reviewed by the user."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, utcnow
from verbatim.models.transcription import Transcription


class Topic(IdMixin, TimestampMixin, OwnedMixin, Base):
    __tablename__ = "topic"
    __table_args__ = (
        # Unique per tenant, whatever the case: "Budget" and "budget" are one topic.
        Index("uq_topic_tenant_name", "tenant_id", text("lower(name)"), unique=True),
    )

    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    # Bumped whenever name or description change: a scoring job started on an older text
    # does not write its suggestions (a newer job is queued).
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )


class AssignmentStatus(enum.StrEnum):
    suggested = "suggested"  # by the scorer, not reviewed yet
    accepted = "accepted"  # by the user (a suggestion accepted, or assigned by hand)
    rejected = "rejected"  # by the user; never suggested again for this transcription


class AssignedBy(enum.StrEnum):
    ai = "ai"
    user = "user"


class TranscriptionTopic(Base):
    __tablename__ = "transcription_topic"
    __table_args__ = (
        # A topic's transcriptions by confidence.
        Index("ix_transcription_topic_topic_confidence", "topic_id", "ai_confidence"),
    )

    transcription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transcription.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[AssignmentStatus] = mapped_column(
        Enum(AssignmentStatus, name="topic_assignment_status", native_enum=False, length=20),
        nullable=False,
    )
    assigned_by: Mapped[AssignedBy] = mapped_column(
        Enum(AssignedBy, name="topic_assigned_by", native_enum=False, length=10), nullable=False
    )
    user_reviewed: Mapped[bool] = mapped_column(default=False, nullable=False)
    # Cosine similarity of the topic to the best passages (0..1); None when assigned by hand.
    ai_confidence: Mapped[float | None] = mapped_column(Float)
    ai_reasoning: Mapped[str | None] = mapped_column(Text)
    # [{"chunk_index", "start_time", "end_time", "text", "similarity"}, ...], best first.
    ai_passages: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    # The topic version and embedding model the suggestion was computed with.
    topic_version: Mapped[int | None] = mapped_column(Integer)
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    transcription: Mapped[Transcription] = relationship(lazy="raise", viewonly=True)
