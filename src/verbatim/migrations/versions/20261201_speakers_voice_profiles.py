"""speakers and voice profiles: talk time, word count and centroid per speaker; voice_profile

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "voice_profile",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("centroid", Vector(dim=192), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
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
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_voice_profile_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_voice_profile_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_profile")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_voice_profile_user_id")),
    )
    op.create_index(
        op.f("ix_voice_profile_tenant_id"), "voice_profile", ["tenant_id"], unique=False
    )
    op.create_index(op.f("ix_voice_profile_user_id"), "voice_profile", ["user_id"], unique=False)

    op.add_column(
        "speaker",
        sa.Column("talk_time", sa.Float(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "speaker",
        sa.Column("word_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.alter_column("speaker", "talk_time", server_default=None)
    op.alter_column("speaker", "word_count", server_default=None)
    op.add_column("speaker", sa.Column("centroid", Vector(dim=192), nullable=True))
    op.add_column("speaker", sa.Column("voice_profile_id", sa.Uuid(), nullable=True))
    op.add_column("speaker", sa.Column("match_confidence", sa.Float(), nullable=True))
    op.create_foreign_key(
        op.f("fk_speaker_voice_profile_id_voice_profile"),
        "speaker",
        "voice_profile",
        ["voice_profile_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        op.f("ix_speaker_voice_profile_id"), "speaker", ["voice_profile_id"], unique=False
    )
    op.create_unique_constraint(
        op.f("uq_speaker_transcription_id"), "speaker", ["transcription_id", "label"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("uq_speaker_transcription_id"), "speaker", type_="unique")
    op.drop_index(op.f("ix_speaker_voice_profile_id"), table_name="speaker")
    op.drop_constraint(
        op.f("fk_speaker_voice_profile_id_voice_profile"), "speaker", type_="foreignkey"
    )
    for column in ("match_confidence", "voice_profile_id", "centroid", "word_count", "talk_time"):
        op.drop_column("speaker", column)
    op.drop_index(op.f("ix_voice_profile_user_id"), table_name="voice_profile")
    op.drop_index(op.f("ix_voice_profile_tenant_id"), table_name="voice_profile")
    op.drop_table("voice_profile")
    # The vector extension stays: other tables may use it.
