"""Webhook endpoints of a user: create (the secret shown once), read, change, delete, test;
their deliveries, and redelivery of one message."""

from __future__ import annotations

import base64
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.downloads import guard
from verbatim.errors import Conflict, NotFound, ValidationFailed
from verbatim.kit.pagination import KeysetPage, PageRequest, keyset_paginate
from verbatim.models import User
from verbatim.webhooks import events
from verbatim.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from verbatim.webhooks.schemas import WebhookCreate, WebhookUpdate


def new_secret() -> str:
    """24 random bytes, base64, with the whsec_ prefix Standard Webhooks libraries accept."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _check_url(settings: Settings, url: str) -> str:
    try:
        return guard.validate_url(url, settings.webhook_allow_networks)
    except guard.UrlRefused as exc:
        raise ValidationFailed(exc.message, code=exc.code) from exc


def _check_events(values: list[str]) -> list[str]:
    if not values:
        raise ValidationFailed("List at least one event type", code="invalid_events")
    unknown = sorted(set(values) - set(events.EVENT_TYPES))
    if unknown:
        raise ValidationFailed(
            f"Unknown event types: {', '.join(unknown)}",
            code="invalid_events",
            details={"unknown": unknown, "known": list(events.EVENT_TYPES)},
        )
    return [e for e in events.EVENT_TYPES if e in set(values)]


async def create(
    session: AsyncSession, settings: Settings, user: User, body: WebhookCreate
) -> WebhookEndpoint:
    url = _check_url(settings, body.url)
    chosen = _check_events(body.events) if body.events is not None else list(events.DEFAULT_EVENTS)
    count = await session.scalar(select(func.count()).where(WebhookEndpoint.user_id == user.id))
    if (count or 0) >= settings.webhook_max_endpoints:
        raise Conflict(
            f"At most {settings.webhook_max_endpoints} webhook endpoints per user",
            code="too_many_webhooks",
        )
    endpoint = WebhookEndpoint(
        user_id=user.id,
        tenant_id=user.tenant_id,
        url=url,
        events=chosen,
        description=body.description,
        secret=new_secret(),
        enabled=True,
        consecutive_failures=0,
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def get(session: AsyncSession, user: User, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.user_id == user.id
        )
    )
    if endpoint is None:
        raise NotFound("Webhook not found", code="webhook_not_found")
    return endpoint


async def list_endpoints(session: AsyncSession, user: User) -> list[WebhookEndpoint]:
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.user_id == user.id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list((await session.scalars(stmt)).all())


async def update(
    session: AsyncSession,
    settings: Settings,
    user: User,
    endpoint_id: uuid.UUID,
    body: WebhookUpdate,
) -> WebhookEndpoint:
    endpoint = await get(session, user, endpoint_id)
    if body.url is not None:
        endpoint.url = _check_url(settings, body.url)
    if body.events is not None:
        endpoint.events = _check_events(body.events)
    if body.description is not None:
        endpoint.description = body.description
    if body.enabled is not None:
        endpoint.enabled = body.enabled
        if body.enabled:  # the owner says it works again: start counting afresh
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
        else:
            endpoint.disabled_reason = "disabled_by_user"
            endpoint.disabled_at = func.now()
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def delete(session: AsyncSession, user: User, endpoint_id: uuid.UUID) -> None:
    endpoint = await get(session, user, endpoint_id)
    await session.delete(endpoint)


async def send_test(session: AsyncSession, user: User, endpoint_id: uuid.UUID) -> WebhookDelivery:
    endpoint = await get(session, user, endpoint_id)
    if not endpoint.enabled:
        raise Conflict("The webhook is disabled; enable it first", code="webhook_disabled")
    return await events.deliver_to(
        session,
        endpoint,
        events.TEST_EVENT,
        {"webhook_endpoint_id": str(endpoint.id), "message": "A test message from Verbatim"},
    )


async def list_deliveries(
    session: AsyncSession,
    user: User,
    endpoint_id: uuid.UUID,
    status: DeliveryStatus | None,
    page: PageRequest,
) -> KeysetPage:
    await get(session, user, endpoint_id)
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.user_id == user.id
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status.value)
    return await keyset_paginate(
        session, stmt, page, WebhookDelivery.created_at, WebhookDelivery.id
    )


async def get_delivery(
    session: AsyncSession, user: User, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    await get(session, user, endpoint_id)  # webhook_not_found first, as on every route
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.user_id == user.id,
        )
    )
    if delivery is None:
        raise NotFound("Delivery not found", code="delivery_not_found")
    return delivery


async def redeliver(
    session: AsyncSession, user: User, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Send the same message (same webhook-id, same body) again, as a new job."""
    delivery = await get_delivery(session, user, endpoint_id, delivery_id)
    endpoint = await get(session, user, endpoint_id)
    await session.refresh(delivery, with_for_update=True)
    if not endpoint.enabled:
        raise Conflict("The webhook is disabled; enable it first", code="webhook_disabled")
    if delivery.status == DeliveryStatus.pending:
        raise Conflict("The message is still being delivered", code="delivery_in_progress")
    await events.queue_delivery(session, delivery)
    await session.flush()
    return delivery
