"""procrastinate's schema, vendored, and its own migrations applied through Alembic.

procrastinate is pinned (pyproject.toml) and its schema SQL as of that version is kept in
`migrations/procrastinate/`, so the initial revision builds the same schema whatever version is
installed. When the pin is raised, the SQL migrations procrastinate ships between the two versions
(`procrastinate/sql/migrations/*.sql` in the new wheel) are copied into
`migrations/procrastinate/migrations/` and applied, in order, by a new Alembic revision that calls
`apply_migration(name)` (docs/operations.md, "Upgrading procrastinate").
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from alembic import op

# The procrastinate version the vendored schema (and the migrations applied so far) correspond
# to. pyproject.toml pins exactly this version; tests check the two agree.
PINNED_VERSION = "3.10.0"

SQL_DIR = Path(__file__).parent / "procrastinate"
MIGRATIONS_DIR = SQL_DIR / "migrations"


def schema_sql(version: str = PINNED_VERSION) -> str:
    return (SQL_DIR / f"schema-{version}.sql").read_text(encoding="utf-8")


def migration_sql(name: str) -> str:
    """A procrastinate migration file by name, with or without `.sql`
    (e.g. `03.04.00_01_pre_add_retry_failed_job_procedure`)."""
    filename = name if name.endswith(".sql") else f"{name}.sql"
    path = MIGRATIONS_DIR / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"procrastinate migration {filename} is not vendored in {MIGRATIONS_DIR}"
        )
    return path.read_text(encoding="utf-8")


def execute_raw(sql: str) -> None:
    """Run SQL on the migration's raw psycopg connection, without parameters, so procrastinate's
    '%' and ':' are left alone. Inside Alembic's transaction: all or nothing with the revision."""
    op.get_bind().connection.dbapi_connection.execute(sql)  # type: ignore[union-attr]


def apply_schema(version: str = PINNED_VERSION) -> None:
    execute_raw(schema_sql(version))


def apply_migration(name: str) -> None:
    execute_raw(migration_sql(name))


def installed_version() -> str:
    return metadata.version("procrastinate")
