from __future__ import annotations

import enum
import uuid

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, TimestampMixin


class Role(enum.StrEnum):
    user = "user"
    admin = "admin"


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "user"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True, nullable=False
    )
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", native_enum=False, length=20), default=Role.user
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # Part of every access token; bumped by "log out everywhere" and by a password change, which
    # makes every access token issued before invalid at once (checked on each request).
    token_version: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0"), nullable=False
    )
    # OpenAI-compatible API (/v1/audio/...): keep each request's audio and transcript in the
    # library unless the request says otherwise (decision 0017).
    openai_store: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true"), nullable=False
    )
