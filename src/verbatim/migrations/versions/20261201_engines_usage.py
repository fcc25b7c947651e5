"""engines and usage: usage_event per engine run; provider job id and raw response

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("transcription", sa.Column("provider_job_id", sa.Text()))
    op.add_column(
        "transcription",
        sa.Column("raw_response", postgresql.JSONB(astext_type=sa.Text())),
    )
    op.create_table(
        "usage_event",
        sa.Column("transcription_id", sa.Uuid(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("engine", sa.String(length=50), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("audio_seconds", sa.Float(), nullable=False),
        sa.Column("processing_seconds", sa.Float(), nullable=False),
        sa.Column("price_per_minute", sa.Float(), nullable=False),
        sa.Column("cost_estimate", sa.Float(), nullable=False),
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
            ["job_id"], ["job.id"], name=op.f("fk_usage_event_job_id_job"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_usage_event_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transcription_id"],
            ["transcription.id"],
            name=op.f("fk_usage_event_transcription_id_transcription"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_usage_event_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_event")),
    )
    op.create_index(op.f("ix_usage_event_user_id"), "usage_event", ["user_id"])
    op.create_index(op.f("ix_usage_event_tenant_id"), "usage_event", ["tenant_id"])
    op.create_index(
        "ix_usage_event_user_created", "usage_event", ["user_id", sa.text("created_at DESC")]
    )
    op.create_index(
        "ix_usage_event_tenant_created", "usage_event", ["tenant_id", sa.text("created_at DESC")]
    )


def downgrade() -> None:
    op.drop_table("usage_event")
    op.drop_column("transcription", "raw_response")
    op.drop_column("transcription", "provider_job_id")
