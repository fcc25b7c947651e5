from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin


class SourceType(enum.StrEnum):
    upload = "upload"
    download = "download"
    presigned = "presigned"


class AudioFile(IdMixin, TimestampMixin, OwnedMixin, Base):
    __tablename__ = "audio_file"
    # The same bytes are stored once per tenant (a personal tenant is one user's library);
    # this constraint settles concurrent uploads.
    __table_args__ = (
        UniqueConstraint("tenant_id", "sha256", name="uq_audio_file_tenant_sha256"),
        # An organisation's library list (decision 0019).
        Index("ix_audio_file_tenant_created", "tenant_id", text("created_at DESC"), "id"),
        Index(
            "ix_audio_file_retention",
            "created_at",
            postgresql_where=text("media_deleted_at IS NULL"),
        ),
        # The library list, newest first, and its source filter (keyset pages, issue 15).
        Index(
            "ix_audio_file_user_created",
            "user_id",
            text("created_at DESC"),
            "id",
            postgresql_include=["tenant_id"],
        ),
        Index(
            "ix_audio_file_user_source_created",
            "user_id",
            "source_type",
            text("created_at DESC"),
            "id",
            postgresql_include=["tenant_id"],
        ),
    )

    storage_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    original_filename: Mapped[str] = mapped_column(String(255), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    mime_type: Mapped[str] = mapped_column(String(100), nullable=False)
    container: Mapped[str] = mapped_column(String(100), nullable=False)
    codec: Mapped[str] = mapped_column(String(100), nullable=False)
    duration: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(Integer)
    has_video: Mapped[bool] = mapped_column(default=False, nullable=False)
    source_type: Mapped[SourceType] = mapped_column(
        Enum(SourceType, name="source_type", native_enum=False, length=20),
        default=SourceType.upload,
        nullable=False,
    )
    source_url: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(500))
    # Set when the stored media was removed (retention, or `storage check --fix` found it gone);
    # the row and its transcripts stay.
    media_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when what is stored differs from what was uploaded (VERBATIM_STORE_TRANSCODED);
    # size_bytes, sha256 and mime_type always describe the original upload.
    stored_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    stored_mime_type: Mapped[str | None] = mapped_column(String(100))
