"""list indexes carry tenant_id (INCLUDE): the tenant-scoped lists' bounded counts are
index-only scans again

Since the tenants migration every owner filter is `tenant_id = t AND user_id = u`; the list
indexes keyed on user_id had to visit the heap for tenant_id, and PostgreSQL counted a large
library with a sequential scan (issue 15, decision 0028). The key columns and their order are
unchanged, so every query that used an index still can. The transcription indexes also carry
parent_id: the lists leave out multi-engine children (`parent_id IS NULL`, migration 0015), and
without it the counts went back to sequential scans (found by bench/scale after the merge).

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-01 04:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, leading columns): each index ends with created_at DESC, id (migration 0005).
LIST_INDEXES: list[tuple[str, str, list[str]]] = [
    ("ix_audio_file_user_created", "audio_file", ["user_id"]),
    ("ix_audio_file_user_source_created", "audio_file", ["user_id", "source_type"]),
    ("ix_transcription_user_created", "transcription", ["user_id"]),
    ("ix_transcription_user_status_created", "transcription", ["user_id", "status"]),
    ("ix_transcription_user_language_created", "transcription", ["user_id", "language"]),
    ("ix_job_user_created", "job", ["user_id"]),
    ("ix_job_user_status_created", "job", ["user_id", "status"]),
    ("ix_job_user_type_created_id", "job", ["user_id", "type"]),
]


def _include(table: str) -> list[str]:
    return ["tenant_id", "parent_id"] if table == "transcription" else ["tenant_id"]


def _recreate(included: bool) -> None:
    for name, table, leading in LIST_INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(
            name,
            table,
            [*leading, sa.text("created_at DESC"), "id"],
            postgresql_include=_include(table) if included else [],
        )
    # An organisation's list (migration 0013): by tenant, children left out.
    op.drop_index("ix_transcription_tenant_created", table_name="transcription")
    op.create_index(
        "ix_transcription_tenant_created",
        "transcription",
        ["tenant_id", sa.text("created_at DESC"), "id"],
        postgresql_include=["parent_id"] if included else [],
    )


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
