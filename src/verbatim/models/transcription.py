from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin

VOICE_DIMENSIONS = 192  # CAM++ speaker embeddings
# The engine name of a multi-engine transcription (the parent of one run per engine). It runs no
# engine itself: audio minutes are counted on its children, the real runs.
RECONCILE_ENGINE = "reconcile"


class TranscriptionStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class Mode(enum.StrEnum):
    mono = "mono"
    dialogue = "dialogue"


class Transcription(IdMixin, TimestampMixin, OwnedMixin, Base):
    __tablename__ = "transcription"
    # The list, newest first, alone and per filter (keyset pages, issue 15). INCLUDE carries
    # what the list also filters on (tenant, not a multi-engine child), so the bounded counts
    # stay index-only scans (migration 0017).
    __table_args__ = (
        Index(
            "ix_transcription_user_created",
            "user_id",
            sql_text("created_at DESC"),
            "id",
            postgresql_include=["tenant_id", "parent_id"],
        ),
        Index(
            "ix_transcription_tenant_created",
            "tenant_id",
            sql_text("created_at DESC"),
            "id",
            postgresql_include=["parent_id"],
        ),
        Index(
            "ix_transcription_user_status_created",
            "user_id",
            "status",
            sql_text("created_at DESC"),
            "id",
            postgresql_include=["tenant_id", "parent_id"],
        ),
        Index(
            "ix_transcription_user_language_created",
            "user_id",
            "language",
            sql_text("created_at DESC"),
            "id",
            postgresql_include=["tenant_id", "parent_id"],
        ),
        # An organisation's distinct languages, probed one by one by search (migration 0018).
        Index("ix_transcription_tenant_language", "tenant_id", "language"),
    )

    audio_file_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("audio_file.id", ondelete="CASCADE"), index=True, nullable=False
    )
    status: Mapped[TranscriptionStatus] = mapped_column(
        Enum(TranscriptionStatus, name="transcription_status", native_enum=False, length=20),
        default=TranscriptionStatus.pending,
        nullable=False,
    )
    requested_language: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(20))
    language_probability: Mapped[float | None] = mapped_column(Float)
    mode: Mapped[Mode] = mapped_column(
        Enum(Mode, name="transcription_mode", native_enum=False, length=20),
        default=Mode.mono,
        nullable=False,
    )
    engine: Mapped[str] = mapped_column(String(50), nullable=False)
    model_name: Mapped[str] = mapped_column(String(200), nullable=False)
    model_version: Mapped[str | None] = mapped_column(String(100))
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, nullable=False)
    text: Mapped[str | None] = mapped_column(Text)
    avg_confidence: Mapped[float | None] = mapped_column(Float)
    word_count: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    processing_time_s: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Cloud engines: the provider's job id, stored as soon as it is known, so a worker that
    # restarts resumes polling instead of submitting (and paying) again.
    provider_job_id: Mapped[str | None] = mapped_column(Text)
    # The provider's answer as received, for reconciliation (issue 11); None for local engines.
    raw_response: Mapped[Any | None] = mapped_column(JSONB, deferred=True)
    # Multi-engine runs (issue 11, decision 0024): each engine's run is a child of the
    # reconciled transcription (engine "reconcile"); children are not listed nor indexed.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("transcription.id", ondelete="CASCADE"), index=True
    )
    # The reconciled transcription's quality metrics (GET /transcriptions/{id}/metrics).
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB, deferred=True)
    # The reconciliation's record: alignment summary, per-slot votes, notes, LLM changes.
    reconciliation: Mapped[dict[str, Any] | None] = mapped_column(JSONB, deferred=True)

    segments: Mapped[list[Segment]] = relationship(
        order_by="Segment.index", cascade="all, delete-orphan", passive_deletes=True
    )


class Segment(Base):
    __tablename__ = "segment"
    # A transcript's segments in order, a page at a time.
    __table_args__ = (Index("ix_segment_transcription_index", "transcription_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    transcription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transcription.id", ondelete="CASCADE"), index=True, nullable=False
    )
    index: Mapped[int] = mapped_column(Integer, nullable=False)
    start: Mapped[float] = mapped_column(Float, nullable=False)
    end: Mapped[float] = mapped_column(Float, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    speaker: Mapped[str | None] = mapped_column(String(100))
    confidence: Mapped[float | None] = mapped_column(Float)
    avg_logprob: Mapped[float | None] = mapped_column(Float)
    no_speech_prob: Mapped[float | None] = mapped_column(Float)
    # [{"start", "end", "word", "probability"}, ...]
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, nullable=False)


class PartialSegment(Base):
    """A segment a running transcription has decoded, published for streamed answers before the
    job writes its results (which delete these rows). Only jobs asked to stream write them."""

    __tablename__ = "partial_segment"

    transcription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transcription.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[float] = mapped_column(Float, nullable=False)
    end: Mapped[float] = mapped_column(Float, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)


class Speaker(Base):
    """One voice heard in one dialogue transcription. Segments name it by `label`."""

    __tablename__ = "speaker"
    __table_args__ = (UniqueConstraint("transcription_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    transcription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transcription.id", ondelete="CASCADE"), index=True, nullable=False
    )
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(200))
    talk_time: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    word_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # The voice's centroid embedding (CAM++, L2-normalised), kept so naming the speaker later
    # can save it as a voice profile. Never audio.
    centroid: Mapped[list[float] | None] = mapped_column(Vector(VOICE_DIMENSIONS))
    # The profile this speaker was matched to (or saved as), and the match's cosine similarity.
    voice_profile_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("voice_profile.id", ondelete="SET NULL"), index=True
    )
    match_confidence: Mapped[float | None] = mapped_column(Float)
