"""download jobs: an index for the per-user download rate limit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 03:30:00

Download jobs need no new column: the URL, options and progress detail live in job.payload.
The rate limit counts a user's download jobs of the last hour on every request.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_job_user_type_created", "job", ["user_id", "type", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_job_user_type_created", table_name="job")
