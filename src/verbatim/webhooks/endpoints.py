from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from verbatim.deps import CurrentUser, SessionDep, SettingsDep
from verbatim.kit.pagination import PageQuery
from verbatim.webhooks import service
from verbatim.webhooks.models import DeliveryStatus
from verbatim.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=201,
    responses={409: {"description": "too_many_webhooks"}},
)
async def create_webhook(
    body: WebhookCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> object:
    """Register an endpoint. The answer holds the signing `secret`, shown this once."""
    return await service.create(session, settings, user, body)


@router.get("", response_model=WebhookList)
async def list_webhooks(user: CurrentUser, session: SessionDep) -> object:
    return {"items": await service.list_endpoints(session, user)}


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    return await service.get(session, user, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    """Change the URL, events or description; `enabled: true` re-enables a disabled endpoint."""
    return await service.update(session, settings, user, webhook_id, body)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    await service.delete(session, user, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/test",
    response_model=DeliveryOut,
    status_code=202,
    responses={409: {"description": "webhook_disabled"}},
)
async def test_webhook(webhook_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    """Queue a `webhook.test` message to this endpoint; follow it in its deliveries."""
    return await service.send_test(session, user, webhook_id)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    webhook_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    page: PageQuery,
    status: DeliveryStatus | None = None,
) -> object:
    """The endpoint's messages, newest first, each with its attempts (status, response time)."""
    result = await service.list_deliveries(session, user, webhook_id, status, page)
    return result.response()


@router.get("/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryOut)
async def get_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> object:
    return await service.get_delivery(session, user, webhook_id, delivery_id)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    responses={409: {"description": "webhook_disabled, delivery_in_progress"}},
)
async def redeliver(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> object:
    """Send the message again, with the same `webhook-id` and body."""
    return await service.redeliver(session, user, webhook_id, delivery_id)
