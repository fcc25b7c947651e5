"""collection list index: a user's collections newest first, for keyset pages

Topics and voice profiles list by name, served by their unique (user_id, lower(name)) and
(user_id, name) indexes; a collection's items by its unique (collection_id, position).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_collection_user_created", "collection", ["user_id", sa.text("created_at DESC"), "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_collection_user_created", table_name="collection")
