"""topics and collections: topic, transcription_topic, collection, transcription_collection

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _owned() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _owned_constraints(table: str) -> list[sa.Constraint]:
    return [
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name=f"fk_{table}_tenant_id_tenant", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=f"fk_{table}_user_id_user", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def upgrade() -> None:
    op.create_table(
        "topic",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_owned(),
        *_owned_constraints("topic"),
    )
    op.create_index("ix_topic_user_id", "topic", ["user_id"], unique=False)
    op.create_index("ix_topic_tenant_id", "topic", ["tenant_id"], unique=False)
    op.create_index("uq_topic_user_name", "topic", ["user_id", sa.text("lower(name)")], unique=True)

    op.create_table(
        "transcription_topic",
        sa.Column("transcription_id", sa.Uuid(), nullable=False),
        sa.Column("topic_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "suggested",
                "accepted",
                "rejected",
                name="topic_assignment_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "assigned_by",
            sa.Enum("ai", "user", name="topic_assigned_by", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("user_reviewed", sa.Boolean(), nullable=False),
        sa.Column("ai_confidence", sa.Float(), nullable=True),
        sa.Column("ai_reasoning", sa.Text(), nullable=True),
        sa.Column("ai_passages", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("topic_version", sa.Integer(), nullable=True),
        sa.Column("embedding_model", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["topic.id"],
            name="fk_transcription_topic_topic_id_topic",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transcription_id"],
            ["transcription.id"],
            name="fk_transcription_topic_transcription_id_transcription",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("transcription_id", "topic_id", name="pk_transcription_topic"),
    )
    op.create_index(
        "ix_transcription_topic_topic_confidence",
        "transcription_topic",
        ["topic_id", "ai_confidence"],
        unique=False,
    )

    op.create_table(
        "collection",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        *_owned(),
        *_owned_constraints("collection"),
    )
    op.create_index("ix_collection_user_id", "collection", ["user_id"], unique=False)
    op.create_index("ix_collection_tenant_id", "collection", ["tenant_id"], unique=False)

    op.create_table(
        "transcription_collection",
        sa.Column("collection_id", sa.Uuid(), nullable=False),
        sa.Column("transcription_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collection.id"],
            name="fk_transcription_collection_collection_id_collection",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transcription_id"],
            ["transcription.id"],
            name="fk_transcription_collection_transcription_id_transcription",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "collection_id", "transcription_id", name="pk_transcription_collection"
        ),
        sa.UniqueConstraint(
            "collection_id",
            "position",
            name="uq_transcription_collection_position",
            deferrable=True,
            initially="IMMEDIATE",
        ),
    )
    op.create_index(
        "ix_transcription_collection_transcription_id",
        "transcription_collection",
        ["transcription_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("transcription_collection")
    op.drop_table("collection")
    op.drop_table("transcription_topic")
    op.drop_table("topic")
