"""Figures no single process sees, read from the database at scrape time, and this process's
database pool.

- queue depth: procrastinate's jobs by queue and status, and Verbatim's unfinished jobs by type
  and status (`pending` includes jobs waiting for a retry or a user slot);
- live workers: procrastinate worker rows whose heartbeat is younger than
  VERBATIM_STALLED_AFTER_S;
- pool: this process's SQLAlchemy pool (size, checked out, overflow).

A scrape runs three small grouped queries (the unfinished-job count uses `ix_job_user_status`'s
status column on a table that keeps only live rows small; procrastinate deletes successful jobs).
Their answer is cached for CACHE_S so several scrapers do not multiply the load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from verbatim.db import session_scope
from verbatim.services import Services, get_services

CACHE_S = 2.0


@dataclass
class Snapshot:
    queue: list[tuple[str, str, int]] = field(default_factory=list)  # queue, status, count
    jobs: list[tuple[str, str, int]] = field(default_factory=list)  # type, status, count
    workers: int | None = None
    taken_at: float = 0.0


# One per runtime (a process has one; tests open several, each on its own database).
_snapshots: dict[int, Snapshot] = {}


def _current() -> Snapshot:
    try:
        return _snapshots.get(id(get_services()), Snapshot())
    except RuntimeError:
        return Snapshot()


async def refresh(services: Services, *, force: bool = False) -> Snapshot:
    cached = _snapshots.get(id(services))
    if cached is not None and not force and time.monotonic() - cached.taken_at < CACHE_S:
        return cached
    stalled_after = services.settings.stalled_after_s
    async with session_scope(services.autocommit_sessionmaker) as session:
        queue = (
            await session.execute(
                text(
                    "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs "
                    "GROUP BY 1, 2"
                )
            )
        ).all()
        jobs = (
            await session.execute(
                text(
                    "SELECT type, status, count(*) FROM job "
                    "WHERE status IN ('pending', 'running') GROUP BY 1, 2"
                )
            )
        ).all()
        workers = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_workers "
                "WHERE last_heartbeat > now() - make_interval(secs => :s)"
            ),
            {"s": stalled_after},
        )
    snapshot = Snapshot(
        queue=[(str(q), str(s), int(n)) for q, s, n in queue],
        jobs=[(str(t), str(s), int(n)) for t, s, n in jobs],
        workers=int(workers or 0),
        taken_at=time.monotonic(),
    )
    if len(_snapshots) > 16:  # runtimes that ended (tests)
        _snapshots.clear()
    _snapshots[id(services)] = snapshot
    return snapshot


class ClusterCollector(Collector):
    """Reads the last snapshot and the pool at collection time (registered once)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = _current()
        if snap.taken_at:
            queue = GaugeMetricFamily(
                "verbatim_queue_jobs",
                "Queue jobs (procrastinate) by queue and status; successful ones are deleted",
                labels=["queue", "status"],
            )
            for name, status, count in snap.queue:
                queue.add_metric([name, status], count)
            yield queue
            jobs = GaugeMetricFamily(
                "verbatim_jobs_unfinished",
                "Verbatim jobs pending or running, by type and status",
                labels=["type", "status"],
            )
            for job_type, status, count in snap.jobs:
                jobs.add_metric([job_type, status], count)
            yield jobs
            if snap.workers is not None:
                yield GaugeMetricFamily(
                    "verbatim_workers_live",
                    "Worker loops with a recent heartbeat (each process runs one per queue)",
                    value=snap.workers,
                )
        yield from _pool()


def _pool() -> Iterator[GaugeMetricFamily]:
    try:
        services = get_services()
    except RuntimeError:
        return
    pool = services.engine.pool
    size = getattr(pool, "size", None)
    checked_out = getattr(pool, "checkedout", None)
    overflow = getattr(pool, "overflow", None)
    gauge = GaugeMetricFamily(
        "verbatim_db_pool_connections",
        "This process's database pool: configured size, connections checked out, overflow",
        labels=["state"],
    )
    if callable(size):
        gauge.add_metric(["size"], size())
    if callable(checked_out):
        gauge.add_metric(["checked_out"], checked_out())
    if callable(overflow):
        gauge.add_metric(["overflow"], max(overflow(), 0))
    yield gauge
    yield GaugeMetricFamily(
        "verbatim_db_pool_timeout_seconds",
        "How long a request waits for a pooled connection before 503 database_busy",
        value=services.settings.database_pool_timeout_s,
    )
