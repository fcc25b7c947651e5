"""search chunks: transcription_chunk with a pgvector embedding, a generated tsvector in the
transcription's text search configuration, keywords; HNSW, GIN and order indexes

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01 00:00:00

HNSW settings: m = 16, ef_construction = 64 (pgvector's defaults). bench/search measures recall
and latency at 100k and 1M chunks; change them there and here together (decision 0011).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMBEDDING_DIMENSIONS = 384


def upgrade() -> None:
    # pgvector ships with the embedded PostgreSQL; an external server needs the package
    # installed and a role allowed to create the extension (docs/operations.md).
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "transcription_chunk",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("transcription_id", sa.Uuid(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start_time", sa.Float(), nullable=False),
        sa.Column("end_time", sa.Float(), nullable=False),
        sa.Column("start_char_pos", sa.Integer(), nullable=False),
        sa.Column("end_char_pos", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=100), nullable=True),
        sa.Column("embedding", Vector(EMBEDDING_DIMENSIONS), nullable=False),
        sa.Column("embedding_model", sa.String(length=200), nullable=False),
        sa.Column(
            "ts_config",
            postgresql.REGCONFIG(),
            server_default=sa.text("'simple'::regconfig"),
            nullable=False,
        ),
        sa.Column(
            "tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector(ts_config, text)", persisted=True),
            nullable=False,
        ),
        sa.Column(
            "keywords",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transcription_id"],
            ["transcription.id"],
            name=op.f("fk_transcription_chunk_transcription_id_transcription"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_transcription_chunk_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_transcription_chunk_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcription_chunk")),
    )
    op.create_index(
        "uq_transcription_chunk_transcription_index",
        "transcription_chunk",
        ["transcription_id", "chunk_index"],
        unique=True,
    )
    op.create_index(
        op.f("ix_transcription_chunk_user_id"), "transcription_chunk", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_transcription_chunk_tenant_id"),
        "transcription_chunk",
        ["tenant_id"],
        unique=False,
    )
    # The reindex command finds vectors of another model without a scan of the embeddings.
    op.create_index(
        "ix_transcription_chunk_embedding_model",
        "transcription_chunk",
        ["embedding_model"],
        unique=False,
    )
    op.create_index(
        "ix_transcription_chunk_tsv",
        "transcription_chunk",
        ["tsv"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_transcription_chunk_embedding",
        "transcription_chunk",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_transcription_chunk_embedding", table_name="transcription_chunk")
    op.drop_index("ix_transcription_chunk_tsv", table_name="transcription_chunk")
    op.drop_index("ix_transcription_chunk_embedding_model", table_name="transcription_chunk")
    op.drop_index(op.f("ix_transcription_chunk_tenant_id"), table_name="transcription_chunk")
    op.drop_index(op.f("ix_transcription_chunk_user_id"), table_name="transcription_chunk")
    op.drop_index("uq_transcription_chunk_transcription_index", table_name="transcription_chunk")
    op.drop_table("transcription_chunk")
    # The extension stays: other objects may use it, and dropping it needs more rights.
