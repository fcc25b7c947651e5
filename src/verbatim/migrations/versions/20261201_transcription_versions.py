"""transcription_version: snapshots of a transcript's segments, words and speakers per version

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-01 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transcription_version",
        sa.Column("transcription_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "engine",
                "edit",
                "reprocess",
                "reconcile",
                name="version_kind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user.id"],
            name=op.f("fk_transcription_version_author_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["transcription_id"],
            ["transcription.id"],
            name=op.f("fk_transcription_version_transcription_id_transcription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcription_version")),
        sa.UniqueConstraint(
            "transcription_id", "version", name=op.f("uq_transcription_version_transcription_id")
        ),
    )
    op.create_index(
        op.f("ix_transcription_version_transcription_id"),
        "transcription_version",
        ["transcription_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_transcription_version_transcription_id"), table_name="transcription_version"
    )
    op.drop_table("transcription_version")
