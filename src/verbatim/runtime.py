"""Start and stop what a process needs, the same way for `serve`, `worker` and tests.

Embedded mode (no database URL): start or reuse the embedded PostgreSQL in the data directory
and run the job worker inside the API process. Distributed mode: only configuration differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from procrastinate import PsycopgConnector

from verbatim import embedded_db, migrate
from verbatim.config import Settings
from verbatim.db import make_engine, make_sessionmaker
from verbatim.engines.models import resolve_model
from verbatim.engines.process_pool import EngineConfig, EnginePool
from verbatim.media.probe_pool import default_pool
from verbatim.metrics.endpoints import install_collectors, multiprocess_mode, refresh_forever
from verbatim.metrics.endpoints import serve_port as serve_metrics_port
from verbatim.queue import CLOUD_TRANSCRIPTION_QUEUE, DEFAULT_QUEUE, TRANSCRIPTION_QUEUE, queue
from verbatim.services import Services, set_services
from verbatim.storage import make_storage
from verbatim.transcriptions import export_cache

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    services: Services
    worker_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    background: list[asyncio.Task[None]] = field(default_factory=list)


async def database_url(settings: Settings) -> tuple[str, embedded_db.EmbeddedServer | None]:
    if settings.database_url:
        return embedded_db.to_sqlalchemy_url(settings.database_url), None
    server = await asyncio.to_thread(embedded_db.start, settings.data_dir / "postgres")
    log.info(
        "embedded_postgres_ready",
        pgdata=str(server.pgdata),
        started=server.started_here,
        adopted=server.adopted,
    )
    return server.sqlalchemy_url, server


def make_engine_pool(settings: Settings) -> EnginePool:
    try:
        preload = resolve_model(settings.default_model, settings.models_dir)
    except Exception:
        preload = None
    return EnginePool(
        settings.worker_transcriptions,
        EngineConfig(
            device=settings.engine_device,
            compute_type=settings.engine_compute_type,
            cpu_threads=settings.engine_cpu_threads,
            batch_size=settings.engine_batch_size,
        ),
        preload,
    )


@contextlib.asynccontextmanager
async def run_runtime(
    settings: Settings,
    *,
    with_worker: bool,
    engine_pool: EnginePool | None = None,
    stop_embedded_db: bool = True,
) -> AsyncIterator[Runtime]:
    url, server = await database_url(settings)
    _check_procrastinate_version()
    if settings.auto_migrate:
        await asyncio.to_thread(migrate.upgrade, url)
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    export_cache.configure(settings.export_cache_mb)
    engine = make_engine(url, settings.database_pool_size, settings.database_pool_timeout_s)
    own_pool = engine_pool is None and with_worker
    if own_pool:
        engine_pool = make_engine_pool(settings)
    services = Services(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        storage=make_storage(settings),
        engine_pool=engine_pool if with_worker else None,
    )
    set_services(services)
    install_collectors()
    # Start the probe workers in the background, so the first upload does not wait 1-4 s.
    warming = asyncio.create_task(asyncio.to_thread(default_pool().warm), name="probe-warm")
    # A connector of this runtime's own: tests open several runtimes in one process.
    connector = PsycopgConnector(conninfo=embedded_db.to_libpq_url(url), min_size=4, max_size=10)
    runtime = Runtime(services=services, background=[warming])
    try:
        with queue.replace_connector(connector):
            async with queue.open_async():
                try:
                    if with_worker:
                        assert engine_pool is not None
                        if own_pool:
                            await engine_pool.warm()
                        runtime.worker_tasks = start_workers(settings)
                    # With several API processes, the job worker's process alone binds the
                    # metrics port (it shows every process's figures: metrics.endpoints).
                    metrics_server = (
                        serve_metrics_port(settings)
                        if with_worker or not multiprocess_mode()
                        else None
                    )
                    if metrics_server is not None:
                        runtime.background.append(
                            asyncio.create_task(refresh_forever(services, 5.0), name="metrics")
                        )
                    try:
                        yield runtime
                    finally:
                        if metrics_server is not None:
                            metrics_server.shutdown()  # type: ignore[attr-defined]
                        for task in runtime.background:
                            task.cancel()
                finally:
                    await stop_workers(runtime.worker_tasks)
    finally:
        if own_pool and engine_pool is not None:
            await engine_pool.close()
        await engine.dispose()
        set_services(None)
        if server is not None and server.owned and stop_embedded_db:
            await asyncio.to_thread(server.stop)


def _check_procrastinate_version() -> None:
    from verbatim.migrations import procrastinate_sql

    installed = procrastinate_sql.installed_version()
    if installed != procrastinate_sql.PINNED_VERSION:
        # Its queries may expect a schema the revisions have not built (docs/operations.md).
        log.warning(
            "procrastinate_version_mismatch",
            installed=installed,
            schema_for=procrastinate_sql.PINNED_VERSION,
        )


def start_workers(settings: Settings) -> list[asyncio.Task[None]]:
    common: dict[str, Any] = {
        "install_signal_handlers": False,
        "update_heartbeat_interval": settings.worker_heartbeat_s,
        "stalled_worker_timeout": settings.stalled_after_s,
        "fetch_job_polling_interval": settings.worker_poll_s,
        "delete_jobs": "successful",
    }
    return [
        asyncio.create_task(
            supervise(
                "transcriptions",
                queues=[TRANSCRIPTION_QUEUE],
                concurrency=settings.worker_transcriptions,
                **common,
            ),
            name="worker-transcriptions",
        ),
        asyncio.create_task(
            supervise(
                "cloud-transcriptions",
                queues=[CLOUD_TRANSCRIPTION_QUEUE],
                concurrency=settings.worker_cloud_transcriptions,
                **common,
            ),
            name="worker-cloud-transcriptions",
        ),
        asyncio.create_task(
            supervise(
                "default",
                queues=[DEFAULT_QUEUE],
                concurrency=settings.worker_concurrency,
                **common,
            ),
            name="worker-default",
        ),
    ]


async def supervise(name: str, **options: Any) -> None:
    """Run a procrastinate worker until cancelled. procrastinate stops a worker whose side task
    failed (its LISTEN connection broke when the database restarted, say): start it again after
    a short, growing pause."""
    delay = 1.0
    while True:
        started = time.monotonic()
        try:
            await queue.run_worker_async(name=name, **options)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker_crashed", worker=name, restart_in_s=delay)
        else:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return  # procrastinate turns a cancellation into a graceful stop
            log.warning("worker_stopped", worker=name, restart_in_s=delay)
        delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
        await asyncio.sleep(delay)


async def stop_workers(tasks: list[asyncio.Task[None]], grace_s: float = 15.0) -> None:
    """Ask the workers to stop; procrastinate waits for running jobs. A worker that has not
    stopped after the grace period is cancelled again, which interrupts that wait (its job is
    re-run later as a stalled job)."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        log.warning("worker_stop_forced", worker=task.get_name())
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
