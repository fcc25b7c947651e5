"""OpenAI-compatible API: the per-user default for keeping requests in the library, and the
segments a streamed transcription has published so far

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-01 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "user",
        sa.Column("openai_store", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.create_table(
        "partial_segment",
        sa.Column(
            "transcription_id",
            sa.Uuid(),
            sa.ForeignKey("transcription.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("index", sa.Integer(), primary_key=True),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("end", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("partial_segment")
    op.drop_column("user", "openai_store")
