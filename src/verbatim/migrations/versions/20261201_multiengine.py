"""transcription: parent_id (multi-engine children), metrics and reconciliation (issue 11)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("transcription", sa.Column("parent_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_transcription_parent_id_transcription"),
        "transcription",
        "transcription",
        ["parent_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        op.f("ix_transcription_parent_id"), "transcription", ["parent_id"], unique=False
    )
    op.add_column(
        "transcription",
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "transcription",
        sa.Column("reconciliation", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("transcription", "reconciliation")
    op.drop_column("transcription", "metrics")
    op.drop_index(op.f("ix_transcription_parent_id"), table_name="transcription")
    op.drop_constraint(
        op.f("fk_transcription_parent_id_transcription"), "transcription", type_="foreignkey"
    )
    op.drop_column("transcription", "parent_id")
