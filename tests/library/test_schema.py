"""The library's tables as migrated match the models (no drift between migration 0007 and
models/topic.py, models/collection.py)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from verbatim import embedded_db
from verbatim.models import Base

TABLES = {"topic", "transcription_topic", "collection", "transcription_collection"}


def _ours(diff: object) -> bool:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item if isinstance(item, tuple) else (item,):
        table = getattr(part, "table", None)
        name = getattr(table, "name", None) or getattr(part, "name", None)
        if name in TABLES:
            return True
        if isinstance(part, str) and part in TABLES:
            return True
    return False


def test_migrated_library_tables_match_the_models(database_url: str) -> None:
    engine = create_engine(embedded_db.to_sqlalchemy_url(database_url), poolclass=NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False}
        )
        diffs = [d for d in compare_metadata(context, Base.metadata) if _ours(d)]
    engine.dispose()
    assert diffs == []
