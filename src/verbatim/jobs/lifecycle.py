"""One lifecycle for every job type: claim, progress, cancel, retry, fail, complete.

A job type supplies only its work, as a `JobKind`:

- `claim(session, job)` reads what the work needs while the job row is locked (and may refuse
  with `JobFailed`);
- `work(ctx, inputs)` does the slow part with no transaction open, reporting progress through
  `ctx.progress(...)`, which raises `JobCancelled` once the job was cancelled;
- `complete(session, job, inputs, result)` writes the results in the one transaction that marks
  the job completed;
- `fail(session, job, code, message)` updates the job type's own rows when the job fails;
- `release(inputs)` frees what the work held (temporary files), whatever happened;
- `after_commit(ctx, inputs)` does what must follow the committed result (files derived from
  it); best effort: a failure is logged, the job stays completed.

The lifecycle guarantees that a job row never stays `running` once its task has ended:
- a permanent failure (`JobFailed`, or an input the engine refuses) fails the job with its code;
- a transient one (`TransientJobError`) puts the job back to `pending` and queues the next attempt
  in the same transaction, with a growing delay, until `VERBATIM_JOB_MAX_ATTEMPTS` attempts;
- any other exception fails the job with `internal_error` and logs the traceback once;
- when the database itself is unreachable, the task raises `DatabaseUnavailable` and procrastinate
  retries it; the re-run claims the job again (counting the attempt).
A periodic reconciler (`jobs.reconcile`) fails any pending or running row whose queue job is
finished or gone, whatever the reason.
"""

from __future__ import annotations

import random
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import psycopg
import structlog
from procrastinate import RetryStrategy
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.jobs.service import defer, user_at_running_limit
from verbatim.metrics import instruments as metrics
from verbatim.models import Job, JobStatus, JobType
from verbatim.models.job import TERMINAL
from verbatim.queue import queue
from verbatim.services import Services, get_services
from verbatim.webhooks import events as webhook_events

log = structlog.get_logger(__name__)

PROGRESS_EVERY_S = 1.0
USER_LIMIT_RECHECK_S = 2.0
# Consecutive runs of one queue job that end because the database is unreachable. Only a
# transport: the number of attempts a job gets is VERBATIM_JOB_MAX_ATTEMPTS, counted on claim.
DATABASE_RETRIES = 10

Inputs = TypeVar("Inputs")
Result = TypeVar("Result")


class JobFailed(Exception):
    """The work cannot succeed as asked; `code` is shown to the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientJobError(Exception):
    """Worth another attempt later (an engine crash, a 5xx, a reset connection)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JobCancelled(Exception):
    """The job was cancelled (or finished elsewhere) while this worker ran it."""


class DatabaseUnavailable(Exception):
    """The database went away mid-job; procrastinate runs the task again later."""


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.OperationalError | sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # the connection pool is exhausted
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def retry_delay(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with jitter, capped: about base, 2 base, 4 base, ... seconds."""
    ceiling = min(max_s, base_s * 2 ** max(attempts - 1, 0))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


@dataclass
class JobContext:
    """What the work sees of its job: ids, settings, services, and a progress line back."""

    services: Services
    job_id: uuid.UUID
    attempts: int
    _last_report: float = field(default=0.0, repr=False)
    _last_webhook: float = field(default=0.0, repr=False)

    async def progress(
        self,
        percent: float | None = None,
        *,
        force: bool = False,
        stage: str | None = None,
        **detail: Any,
    ) -> None:
        """Store progress (0-99; completion sets 100), the stage shown and detail, at most once
        a second.

        Raises JobCancelled when the job is no longer running (cancelled by its owner), so the
        work stops at its next report.
        """
        now = time.monotonic()
        if not force and now - self._last_report < PROGRESS_EVERY_S:
            return
        self._last_report = now
        async with session_scope(self.services.sessionmaker) as session:
            job = await session.get(Job, self.job_id, with_for_update=True)
            if job is None or job.status is not JobStatus.running:
                raise JobCancelled
            if percent is not None:
                job.progress = min(99.0, max(0.0, round(percent, 1)))
            if stage is not None:
                job.stage = stage
            if detail and any(job.detail.get(k) != v for k, v in detail.items()):
                job.update_detail(**detail)
            # job.progress webhooks (opt-in), throttled per job, in the same transaction.
            interval = self.services.settings.webhook_progress_interval_s
            if now - self._last_webhook >= interval:
                self._last_webhook = now
                await webhook_events.job_progressed(session, job)


class JobKind(ABC, Generic[Inputs, Result]):
    """One type of job: what it reads, what it does, what it writes."""

    type: JobType
    stage: str = "running"  # shown while the work runs
    # Whether a running job of this type takes one of the user's VERBATIM_MAX_RUNNING_PER_USER.
    limited_per_user: bool = True

    def max_attempts(self, settings: Settings) -> int:
        """Attempts (the first included) before a transient failure becomes final."""
        return settings.job_max_attempts

    def retry_backoff(self, settings: Settings) -> tuple[float, float]:
        """(base, cap) of the delay before the next attempt."""
        return settings.job_retry_base_s, settings.job_retry_max_s

    @abstractmethod
    async def claim(self, session: AsyncSession, job: Job) -> Inputs:
        """Read the work's inputs; the job row is locked and already marked running."""

    @abstractmethod
    async def work(self, ctx: JobContext, inputs: Inputs) -> Result:
        """The slow part, outside any transaction."""

    @abstractmethod
    async def complete(
        self, ctx: JobContext, session: AsyncSession, job: Job, inputs: Inputs, result: Result
    ) -> None:
        """Write the results; the job is marked completed in the same transaction."""

    async def fail(self, session: AsyncSession, job: Job, code: str, message: str) -> None:
        """Mark the job type's own rows failed (the job row is handled by the lifecycle)."""

    async def release(self, inputs: Inputs) -> None:
        """Free what the work held, after success or failure."""

    async def after_commit(self, ctx: JobContext, inputs: Inputs) -> None:
        """Runs once the completing transaction committed; must be safe to repeat."""


@dataclass
class _Claimed(Generic[Inputs]):
    inputs: Inputs
    attempts: int


class JobTask:
    """A procrastinate task running one JobKind under the lifecycle."""

    def __init__(self, kind: JobKind[Any, Any], *, name: str, queue_name: str) -> None:
        self.kind = kind
        self.name = name

        async def entry(job_id: str) -> None:
            try:
                await run_job(get_services(), kind, uuid.UUID(job_id), self.task)
            except Exception as exc:
                if is_database_unavailable(exc):
                    raise DatabaseUnavailable(str(exc)) from exc
                raise

        entry.__name__ = entry.__qualname__ = name.replace(".", "_")
        self.task = queue.task(
            name=name,
            queue=queue_name,
            retry=RetryStrategy(
                max_attempts=DATABASE_RETRIES,
                exponential_wait=2,
                retry_exceptions={DatabaseUnavailable},
            ),
        )(entry)


async def run_job(
    services: Services, kind: JobKind[Any, Any], job_id: uuid.UUID, task: Any
) -> None:
    claimed = await _claim(services, kind, job_id, task)
    if claimed is None:
        return
    structlog.contextvars.bind_contextvars(job_id=str(job_id), job_type=kind.type.value)
    ctx = JobContext(services=services, job_id=job_id, attempts=claimed.attempts)
    started = time.monotonic()
    outcome = "failed"
    try:
        try:
            result = await kind.work(ctx, claimed.inputs)
            await _complete(ctx, kind, claimed.inputs, result)
            outcome = "completed"
            await _after_commit(ctx, kind, claimed.inputs)
        finally:
            await kind.release(claimed.inputs)
    except JobCancelled:
        outcome = "cancelled"
        log.info("job_cancelled")
    except JobFailed as exc:
        await _fail(services, kind, job_id, exc.code, exc.message)
    except TransientJobError as exc:
        outcome = await _retry_or_fail(services, kind, job_id, task, claimed.attempts, exc)
    except ConnectionError as exc:  # a network blip in the work (a reset, a refused connect)
        transient = TransientJobError("connection_error", str(exc) or exc.__class__.__name__)
        outcome = await _retry_or_fail(services, kind, job_id, task, claimed.attempts, transient)
    except Exception as exc:
        if is_database_unavailable(exc):
            outcome = "interrupted"
            raise  # nothing can be recorded now: procrastinate runs the task again later
        log.exception("job_internal_error")
        await _fail(
            services, kind, job_id, "internal_error", "The job failed because of an internal error"
        )
    finally:
        metrics.record_job(kind.type.value, outcome, time.monotonic() - started)


async def _retry_or_fail(
    services: Services,
    kind: JobKind[Any, Any],
    job_id: uuid.UUID,
    task: Any,
    attempts: int,
    exc: TransientJobError,
) -> str:
    if attempts >= kind.max_attempts(services.settings):
        await _fail(services, kind, job_id, exc.code, exc.message)
        return "failed"
    await _schedule_retry(services, kind, job_id, task, exc, attempts)
    return "retried"


async def _claim(
    services: Services, kind: JobKind[Any, Any], job_id: uuid.UUID, task: Any
) -> _Claimed[Any] | None:
    settings = services.settings
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in TERMINAL:
            return None  # deleted, cancelled, or done by an earlier run
        if kind.limited_per_user and await user_at_running_limit(
            session, job, settings.max_running_per_user
        ):
            job.stage = "waiting_for_user_slot"
            await defer(session, job, task, schedule_in=USER_LIMIT_RECHECK_S)
            return None
        if job.attempts >= kind.max_attempts(settings):
            # Re-run after its worker died or the database went away, with no attempt left.
            _mark_failed(
                job,
                job.error_code or "too_many_attempts",
                job.error_message or f"The job was tried {job.attempts} times",
            )
            await kind.fail(session, job, job.error_code or "", job.error_message or "")
            await webhook_events.job_finished(session, job)
            return None
        job.transition(JobStatus.running)
        job.attempts += 1
        job.stage = kind.stage
        job.progress = 0.0
        try:
            async with session.begin_nested():
                inputs = await kind.claim(session, job)
        except JobFailed as exc:
            _mark_failed(job, exc.code, exc.message)
            await kind.fail(session, job, exc.code, exc.message)
            await webhook_events.job_finished(session, job)
            log.warning("job_failed", job_id=str(job_id), code=exc.code, error=exc.message)
            metrics.record_job_failure(kind.type.value, exc.code)
            return None
        return _Claimed(inputs=inputs, attempts=job.attempts)


async def _complete(ctx: JobContext, kind: JobKind[Any, Any], inputs: Any, result: Any) -> None:
    async with session_scope(ctx.services.sessionmaker) as session:
        job = await session.get(Job, ctx.job_id, with_for_update=True)
        if job is None or job.status is not JobStatus.running:
            raise JobCancelled
        await kind.complete(ctx, session, job, inputs, result)
        job.progress = 100.0
        job.stage = "completed"
        job.error_code = job.error_message = None
        job.transition(JobStatus.completed)
        await webhook_events.job_finished(session, job)
    log.info("job_completed")


async def _after_commit(ctx: JobContext, kind: JobKind[Any, Any], inputs: Any) -> None:
    try:
        await kind.after_commit(ctx, inputs)
    except Exception:  # the result is committed: what follows it is rebuilt on demand
        log.exception("job_after_commit_failed")


async def _fail(
    services: Services, kind: JobKind[Any, Any], job_id: uuid.UUID, code: str, message: str
) -> None:
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in TERMINAL:
            return
        _mark_failed(job, code, message)
        await kind.fail(session, job, code, message)
        await webhook_events.job_finished(session, job)
    log.warning("job_failed", code=code, error=message)
    metrics.record_job_failure(kind.type.value, code)


def _mark_failed(job: Job, code: str, message: str) -> None:
    if job.status is JobStatus.pending:
        job.transition(JobStatus.running)
    job.transition(JobStatus.failed)
    job.stage = "failed"
    job.error_code, job.error_message = code, message


async def _schedule_retry(
    services: Services,
    kind: JobKind[Any, Any],
    job_id: uuid.UUID,
    task: Any,
    exc: TransientJobError,
    attempts: int,
) -> None:
    """Back to pending and the next attempt queued, in one transaction."""
    delay = retry_delay(attempts, *kind.retry_backoff(services.settings))
    async with session_scope(services.sessionmaker) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status is not JobStatus.running:
            return
        job.transition(JobStatus.pending)
        job.stage = "retry_scheduled"
        job.error_code, job.error_message = exc.code, exc.message
        await defer(session, job, task, schedule_in=delay)
    log.warning("job_retry_scheduled", code=exc.code, error=exc.message, in_s=round(delay, 1))


def kind_for(job_type: JobType) -> JobKind[Any, Any] | None:
    """The registered kind of a job type (task modules register on import)."""
    for attempt in range(2):
        for job_task in registered():
            if job_task.kind.type is job_type:
                return job_task.kind
        if attempt == 0:
            queue.perform_import_paths()  # type: ignore[no-untyped-call]
    return None


_registry: list[JobTask] = []


def register(kind: JobKind[Any, Any], *, name: str, queue_name: str) -> JobTask:
    """Make `kind` a queue task named `name` (domain.verb) running under the lifecycle."""
    job_task = JobTask(kind, name=name, queue_name=queue_name)
    _registry.append(job_task)
    return job_task


def registered() -> list[JobTask]:
    return list(_registry)
