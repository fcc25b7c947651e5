"""Apply Alembic migrations from code (`verbatim migrate`, and on start in embedded mode)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_lock key held around every upgrade (migrations/env.py): "verbatim" as 8 bytes.
MIGRATION_LOCK_KEY = int.from_bytes(b"verbatim", "big") & 0x7FFF_FFFF_FFFF_FFFF


def alembic_config(sqlalchemy_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Files are named by date and slug: 20261122_core_tables.py
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(slug)s")
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return cfg


def upgrade(sqlalchemy_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(sqlalchemy_url), revision)
