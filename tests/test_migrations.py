"""The schema Alembic builds: procrastinate's part matches what the installed procrastinate
expects, upgrades from an older revision reach the same schema as a fresh database, and
concurrent upgrades serialise on an advisory lock."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from procrastinate.schema import SchemaManager
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.conftest import db_uri
from verbatim import embedded_db, migrate
from verbatim.migrations import procrastinate_sql

ROOT = Path(__file__).parent.parent


def snapshot(uri: str, prefix: str = "") -> dict[str, Any]:
    """Tables, columns, indexes, constraints, functions, enum types and triggers in `public`
    whose names start with prefix."""
    like = prefix + "%"
    queries = {
        "columns": """SELECT table_name, column_name, data_type, udt_name, is_nullable,
                             column_default
                      FROM information_schema.columns
                      WHERE table_schema = 'public' AND table_name LIKE %(like)s""",
        "indexes": """SELECT indexname, indexdef FROM pg_indexes
                      WHERE schemaname = 'public' AND tablename LIKE %(like)s""",
        "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                          FROM pg_constraint
                          WHERE connamespace = 'public'::regnamespace
                            AND conrelid::regclass::text LIKE %(like)s""",
        "functions": """SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
                        FROM pg_proc p
                        WHERE p.pronamespace = 'public'::regnamespace
                          AND p.prokind IN ('f', 'p') AND p.proname LIKE %(like)s""",
        "enums": """SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text
                    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
                    WHERE t.typnamespace = 'public'::regnamespace AND t.typname LIKE %(like)s
                    GROUP BY t.typname""",
        "triggers": """SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
                       WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE %(like)s""",
    }
    with psycopg.connect(uri) as conn:
        return {
            name: sorted(tuple(row) for row in conn.execute(sql, {"like": like}).fetchall())  # type: ignore[arg-type]
            for name, sql in queries.items()
        }


@pytest.fixture
def empty_database(pg_server: embedded_db.EmbeddedServer) -> Iterator[str]:
    name = f"e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield db_uri(pg_server, name)
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_procrastinate_is_pinned_to_the_vendored_version() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if d.startswith("procrastinate")]
    assert pins == [f"procrastinate[psycopg]=={procrastinate_sql.PINNED_VERSION}"]
    assert procrastinate_sql.installed_version() == procrastinate_sql.PINNED_VERSION
    assert procrastinate_sql.schema_sql().strip()


def test_alembic_builds_the_schema_procrastinate_expects(
    database_url: str, empty_database: str
) -> None:
    # What the installed procrastinate would create on an empty database...
    with psycopg.connect(empty_database) as conn:
        conn.execute(SchemaManager.get_schema())
    expected = snapshot(empty_database, "procrastinate")
    assert expected["functions"] and expected["columns"] and expected["triggers"]
    # ...is what Alembic's revisions built (the session's migrated template).
    assert snapshot(database_url, "procrastinate") == expected


def test_the_initial_revision_does_not_read_the_installed_package(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> str:
        raise AssertionError("the installed procrastinate's schema.sql was read")

    monkeypatch.setattr(SchemaManager, "get_schema", staticmethod(refuse))
    migrate.upgrade(embedded_db.to_sqlalchemy_url(empty_database))
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone() == (
            "procrastinate_jobs",
        )


def test_upgrade_from_0003_reaches_the_schema_of_a_fresh_database(
    database_url: str, empty_database: str
) -> None:
    url = embedded_db.to_sqlalchemy_url(empty_database)
    migrate.upgrade(url, "0003")  # a database migrated before this change
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0003",)]
    migrate.upgrade(url)
    assert snapshot(empty_database) == snapshot(database_url)


def test_a_procrastinate_migration_file_is_applied_by_name(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A migration file as procrastinate writes them: '%' and ':' must reach PostgreSQL as is.
    (tmp_path / "03.99.00_01_pre_example.sql").write_text(
        "CREATE FUNCTION procrastinate_example(x text) RETURNS text LANGUAGE plpgsql AS $$\n"
        "BEGIN RAISE NOTICE 'value: %', x; RETURN x || '%:done'; END; $$;\n"
    )
    monkeypatch.setattr(procrastinate_sql, "MIGRATIONS_DIR", tmp_path)
    engine = create_engine(embedded_db.to_sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            procrastinate_sql.apply_migration("03.99.00_01_pre_example")
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT procrastinate_example('a')")) == "a%:done"
    finally:
        engine.dispose()
    with pytest.raises(FileNotFoundError, match="not vendored"):
        procrastinate_sql.migration_sql("99.00.00_01_pre_nothing")


@pytest.mark.slow
def test_concurrent_upgrades_of_a_fresh_database_both_succeed(
    database_url: str, empty_database: str
) -> None:
    url = embedded_db.to_sqlalchemy_url(empty_database)
    start_at = time.time() + 3  # both past their imports, then upgrade at the same instant
    script = (
        "import sys, time\n"
        "from verbatim import migrate\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "migrate.upgrade(sys.argv[1])\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    for rc, err in results:
        assert rc == 0, err
    assert snapshot(empty_database) == snapshot(database_url)
    with psycopg.connect(empty_database) as conn:
        assert len(conn.execute("SELECT version_num FROM alembic_version").fetchall()) == 1
