"""scale indexes: each list's filter and order (user, [filter,] created_at DESC, id) for keyset
pages, and a transcript's segments in order

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, leading columns): each index ends with created_at DESC, id.
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


def upgrade() -> None:
    for name, table, leading in LIST_INDEXES:
        op.create_index(name, table, [*leading, sa.text("created_at DESC"), "id"])
    # Served by ix_job_user_type_created_id (same leading columns, ordered the same way).
    op.drop_index("ix_job_user_type_created", table_name="job")
    op.create_index("ix_segment_transcription_index", "segment", ["transcription_id", "index"])


def downgrade() -> None:
    op.drop_index("ix_segment_transcription_index", table_name="segment")
    op.create_index("ix_job_user_type_created", "job", ["user_id", "type", "created_at"])
    for name, table, _ in reversed(LIST_INDEXES):
        op.drop_index(name, table_name=table)
