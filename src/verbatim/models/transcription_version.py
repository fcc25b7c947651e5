from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, TimestampMixin


class VersionKind(enum.StrEnum):
    engine = "engine"  # what the engine wrote (snapshotted before the first change)
    edit = "edit"  # a person's edit in the editor or through the API
    reprocess = "reprocess"  # a re-run of the pipeline over the same recording
    reconcile = "reconcile"  # several engines' results merged


class TranscriptionVersion(IdMixin, TimestampMixin, Base):
    """One state of a transcript: its segments (with words) and speakers, as a snapshot.

    Numbered from 1 per transcription; the highest number is the current state, the one the
    segment rows hold. Any writer of a new state (edits here; reprocessing and reconciliation)
    appends a row with its `kind` through versions.service.record_version.
    """

    __tablename__ = "transcription_version"
    __table_args__ = (UniqueConstraint("transcription_id", "version"),)

    transcription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transcription.id", ondelete="CASCADE"), index=True, nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[VersionKind] = mapped_column(
        Enum(VersionKind, name="version_kind", native_enum=False, length=20), nullable=False
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    # {"segments": [{start, end, text, speaker, confidence, words}],
    #  "speakers": [{label, display_name}]}
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
