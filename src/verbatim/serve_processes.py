"""`verbatim serve --api-workers N` (N > 1): N API processes on one port, and the job worker
in a process of its own.

One Python process answers about 100 list requests a second on this class of machine, one
core's worth (issue 15, decision 0029); more cores need more processes. This parent:

1. starts (or adopts) the embedded PostgreSQL and migrates, once, before any child exists;
2. starts `verbatim worker` as a child when the worker runs in the service (it loads the
   speech model once, rather than once per API process);
3. runs uvicorn's supervisor with N processes sharing the listening socket, each building
   the app from the environment set here (database URL, no migration, no worker);
4. on SIGINT/SIGTERM stops them all, then the embedded PostgreSQL it started.

Prometheus counters of every process are summed through PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import structlog

from verbatim import migrate
from verbatim.config import Settings
from verbatim.runtime import database_url

log = structlog.get_logger(__name__)


class ServeError(Exception):
    pass


def serve_processes(
    settings: Settings,
    *,
    api_workers: int,
    with_worker: bool,
    host: str,
    port: int,
    max_header_bytes: int,
    uvicorn_kwargs: dict[str, Any],
) -> None:
    import uvicorn

    if settings.metrics_port is not None and not with_worker:
        # Which of N identical processes would bind it? Only the worker's process does.
        raise ServeError(
            "VERBATIM_METRICS_PORT with several API processes needs the job worker in the"
            " service; use GET /metrics with VERBATIM_METRICS_TOKEN instead"
        )
    url, server = asyncio.run(database_url(settings))
    metrics_dir = tempfile.mkdtemp(prefix="verbatim-metrics-")
    job_worker: _JobWorker | None = None
    try:
        if settings.auto_migrate:
            migrate.upgrade(url)
        # Inherited by every child (uvicorn spawns its processes with this environment).
        os.environ.update(
            {
                "VERBATIM_DATABASE_URL": url,
                "VERBATIM_AUTO_MIGRATE": "false",
                "VERBATIM_MAX_HEADER_BYTES": str(max_header_bytes),
                "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
            }
        )
        if with_worker:
            job_worker = _JobWorker()
        os.environ["VERBATIM_RUN_WORKER_IN_API"] = "false"
        log.info("api_processes", count=api_workers, worker_process=with_worker)
        uvicorn.run(
            "verbatim.app:create_app",
            factory=True,
            workers=api_workers,
            host=host,
            port=port,
            http="verbatim.httpserver:EnvBoundedProtocol",
            **uvicorn_kwargs,
        )
    finally:
        if job_worker is not None:
            job_worker.stop()
        if server is not None and server.owned:
            server.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)


RESTART_DELAY_MIN_S = 1.0
RESTART_DELAY_MAX_S = 60.0
HEALTHY_RUN_S = 60.0


def restart_delay(previous_s: float, ran_for_s: float) -> float:
    """Seconds before starting the job worker again: 1 s after a run that lasted, doubling
    (up to a minute) while it keeps dying within a minute of its start."""
    if ran_for_s >= HEALTHY_RUN_S or previous_s <= 0:
        return RESTART_DELAY_MIN_S
    return min(previous_s * 2, RESTART_DELAY_MAX_S)


class _JobWorker:
    """`verbatim worker` as a child, started again if it dies (its jobs are retried: the
    job lifecycle's stalled-worker recovery)."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._process = self._start()
        self._watch = threading.Thread(target=self._keep_alive, name="job-worker", daemon=True)
        self._watch.start()

    @staticmethod
    def _start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "verbatim.cli", "worker"])

    def _keep_alive(self) -> None:
        delay = 0.0
        while not self._stopping.is_set():
            started = time.monotonic()
            code = self._process.wait()
            if self._stopping.is_set():
                return
            delay = restart_delay(delay, time.monotonic() - started)
            log.warning("job_worker_exited", returncode=code, restart_in_s=delay)
            # Wakes at once on stop(); a worker that dies at start-up (bad configuration,
            # database gone) is not restarted in a tight loop.
            if self._stopping.wait(delay):
                return
            self._process = self._start()

    def stop(self) -> None:
        self._stopping.set()
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
