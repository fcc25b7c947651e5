"""webhooks.deliver: one message to one endpoint, as a job type on the lifecycle.

A failed attempt (non-2xx, timeout, refused connection) is logged on the delivery in its own
transaction, then raised as transient: the lifecycle queues the next attempt with backoff and
jitter (`VERBATIM_WEBHOOK_RETRY_*`) until `VERBATIM_WEBHOOK_MAX_ATTEMPTS`. A destination the
guard refuses fails at once. A worker killed mid-attempt leaves the job running; stalled-job
recovery runs it again with the same `webhook-id`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.jobs.lifecycle import JobContext, JobFailed, JobKind, TransientJobError, register
from verbatim.metrics import instruments as metrics
from verbatim.models import Job, JobType
from verbatim.models.base import utcnow
from verbatim.queue import DEFAULT_QUEUE
from verbatim.services import Services, get_services
from verbatim.webhooks import sender
from verbatim.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

ATTEMPT_LOG_KEEP = 50
# Failures that say nothing about the endpoint (it was not tried).
NOT_TRIED = frozenset({"delivery_missing", "endpoint_disabled", "superseded"})


@dataclass
class DeliveryInputs:
    delivery_id: uuid.UUID
    url: str
    secret: str
    webhook_id: str
    payload: dict[str, Any]


def _record(delivery: WebhookDelivery, attempt: sender.Attempt) -> None:
    delivery.attempts += 1
    delivery.last_status_code = attempt.status_code
    delivery.last_response_ms = round(attempt.response_ms, 1)
    delivery.last_error = attempt.error
    delivery.attempt_log = [*delivery.attempt_log, attempt.log_entry()][-ATTEMPT_LOG_KEEP:]


async def _record_failed_attempt(
    services: Services, delivery_id: uuid.UUID, attempt: sender.Attempt
) -> None:
    async with session_scope(services.sessionmaker) as session:
        delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is not None:
            _record(delivery, attempt)


class DeliveryKind(JobKind[DeliveryInputs, sender.Attempt]):
    type = JobType.webhook_delivery
    stage = "delivering"
    limited_per_user = False  # a slow receiver must not hold the user's transcription slots

    def max_attempts(self, settings: Settings) -> int:
        return settings.webhook_max_attempts

    def retry_backoff(self, settings: Settings) -> tuple[float, float]:
        return settings.webhook_retry_base_s, settings.webhook_retry_max_s

    async def claim(self, session: AsyncSession, job: Job) -> DeliveryInputs:
        delivery = await session.get(
            WebhookDelivery, uuid.UUID(job.payload["delivery_id"]), with_for_update=True
        )
        if delivery is None:
            raise JobFailed("delivery_missing", "The delivery was deleted")
        if delivery.job_id != job.id:
            raise JobFailed("superseded", "A redelivery replaced this job")
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            raise JobFailed("endpoint_disabled", "The endpoint is disabled")
        return DeliveryInputs(
            delivery_id=delivery.id,
            url=endpoint.url,
            secret=endpoint.secret,
            webhook_id=delivery.webhook_id,
            payload=dict(delivery.payload),
        )

    async def work(self, ctx: JobContext, inputs: DeliveryInputs) -> sender.Attempt:
        settings = ctx.services.settings
        attempt = await sender.send(
            inputs.url,
            inputs.secret,
            inputs.webhook_id,
            inputs.payload,
            allow=settings.webhook_allow_networks,
            timeout_s=settings.webhook_timeout_s,
        )
        # One count per attempt: delivered, or why not (http_500, timeout, blocked_destination...).
        metrics.record_webhook_delivery(
            "delivered" if attempt.ok else (attempt.error or f"http_{attempt.status_code}")
        )
        if attempt.ok:
            return attempt
        await _record_failed_attempt(ctx.services, inputs.delivery_id, attempt)
        error = attempt.error or "failed"
        if error == "blocked_destination":
            raise JobFailed(error, "The endpoint resolves to an address webhooks may not reach")
        raise TransientJobError(error, f"Delivery attempt failed: {error}")

    async def complete(
        self,
        ctx: JobContext,
        session: AsyncSession,
        job: Job,
        inputs: DeliveryInputs,
        result: sender.Attempt,
    ) -> None:
        delivery = await session.get(WebhookDelivery, inputs.delivery_id, with_for_update=True)
        if delivery is None:
            return
        _record(delivery, result)
        delivery.status = DeliveryStatus.succeeded
        delivery.delivered_at = utcnow()
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
        if endpoint is not None:
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None

    async def fail(self, session: AsyncSession, job: Job, code: str, message: str) -> None:
        delivery = await session.get(
            WebhookDelivery, uuid.UUID(job.payload["delivery_id"]), with_for_update=True
        )
        if delivery is None or delivery.job_id != job.id:
            return
        delivery.status = DeliveryStatus.failed
        delivery.last_error = delivery.last_error or code
        if code in NOT_TRIED:
            return
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
        if endpoint is None:
            return
        endpoint.consecutive_failures += 1
        endpoint.failing_since = endpoint.failing_since or delivery.created_at
        limit = get_services().settings.webhook_disable_after_failures
        if endpoint.enabled and endpoint.consecutive_failures >= limit:
            endpoint.enabled = False
            endpoint.disabled_reason = (
                "blocked_destination" if code == "blocked_destination" else "repeated_failures"
            )
            endpoint.disabled_at = utcnow()


deliver = register(DeliveryKind(), name="webhooks.deliver", queue_name=DEFAULT_QUEUE)
