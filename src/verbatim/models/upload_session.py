from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin


class UploadStatus(enum.StrEnum):
    pending = "pending"
    completed = "completed"
    aborted = "aborted"
    expired = "expired"


class UploadSession(IdMixin, TimestampMixin, OwnedMixin, Base):
    """A direct upload: the client PUTs the bytes to presigned URLs, then asks to complete it.

    The bytes wait under `staging_key` until completion moves them to the audio file's key.
    """

    __tablename__ = "upload_session"
    # Housekeeping looks for pending sessions past their expiry.
    __table_args__ = (Index("ix_upload_session_status_expires", "status", "expires_at"),)

    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    declared_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # What the client said; never trusted (the probe decides), kept for support.
    content_type: Mapped[str | None] = mapped_column(String(100))
    staging_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    multipart_upload_id: Mapped[str | None] = mapped_column(String(1024))
    part_size: Mapped[int | None] = mapped_column(BigInteger)
    part_count: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, name="upload_status", native_enum=False, length=20),
        default=UploadStatus.pending,
        nullable=False,
    )
    error_code: Mapped[str | None] = mapped_column(String(100))
    audio_file_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("audio_file.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
