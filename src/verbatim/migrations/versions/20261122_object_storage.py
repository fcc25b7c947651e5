"""object storage: direct upload sessions; media retention and transcoded-storage columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "audio_file", sa.Column("media_deleted_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("audio_file", sa.Column("stored_size_bytes", sa.BigInteger(), nullable=True))
    op.add_column("audio_file", sa.Column("stored_mime_type", sa.String(length=100), nullable=True))
    # Retention scans media still stored, oldest first.
    op.create_index(
        "ix_audio_file_retention",
        "audio_file",
        ["created_at"],
        postgresql_where=sa.text("media_deleted_at IS NULL"),
    )
    op.create_table(
        "upload_session",
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("declared_size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("staging_key", sa.String(length=1024), nullable=False),
        sa.Column("multipart_upload_id", sa.String(length=1024), nullable=True),
        sa.Column("part_size", sa.BigInteger(), nullable=True),
        sa.Column("part_count", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "completed",
                "aborted",
                "expired",
                name="upload_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("audio_file_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["audio_file_id"],
            ["audio_file.id"],
            name=op.f("fk_upload_session_audio_file_id_audio_file"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_upload_session_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_upload_session_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_session")),
    )
    op.create_index(
        op.f("ix_upload_session_tenant_id"), "upload_session", ["tenant_id"], unique=False
    )
    op.create_index(op.f("ix_upload_session_user_id"), "upload_session", ["user_id"], unique=False)
    op.create_index("ix_upload_session_status_expires", "upload_session", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_table("upload_session")
    op.drop_index("ix_audio_file_retention", table_name="audio_file")
    op.drop_column("audio_file", "stored_mime_type")
    op.drop_column("audio_file", "stored_size_bytes")
    op.drop_column("audio_file", "media_deleted_at")
