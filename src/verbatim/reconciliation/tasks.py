"""Queue entry point for reconciliation (the job lifecycle runs runner.ReconcileJob)."""

from __future__ import annotations

from verbatim.jobs.lifecycle import register
from verbatim.queue import DEFAULT_QUEUE
from verbatim.reconciliation.runner import ReconcileJob

reconcile_task = register(ReconcileJob(), name="transcriptions.reconcile", queue_name=DEFAULT_QUEUE)
run_reconcile = reconcile_task.task
