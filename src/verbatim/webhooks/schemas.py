from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from verbatim.downloads.guard import MAX_URL_LENGTH
from verbatim.kit.schemas import CursorPage, RequestModel


class WebhookCreate(RequestModel):
    url: str = Field(max_length=MAX_URL_LENGTH, description="http(s) URL receiving POSTs")
    events: list[str] | None = Field(
        default=None,
        max_length=20,
        description="Event types to receive; default: every type except job.progress (opt-in)",
    )
    description: str = Field(default="", max_length=500)


class WebhookUpdate(RequestModel):
    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    events: list[str] | None = Field(default=None, max_length=20)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(default=None, description="true re-enables a disabled endpoint")


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the service disabled it: repeated_failures, blocked_destination"
    )
    disabled_at: datetime | None
    consecutive_failures: int = Field(description="Messages in a row that failed for good")
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Signing secret (whsec_...): shown only in this answer")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryAttempt(BaseModel):
    at: datetime
    status_code: int | None
    response_ms: float
    error: str | None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    webhook_id: str = Field(description="The webhook-id header of every attempt of this message")
    endpoint_id: uuid.UUID
    event_type: str
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    last_status_code: int | None
    last_response_ms: float | None
    last_error: str | None
    attempt_log: list[DeliveryAttempt]
    payload: dict[str, Any]
    job_id: uuid.UUID | None
    created_at: datetime
    delivered_at: datetime | None
    updated_at: datetime


class DeliveryPage(CursorPage[DeliveryOut]):
    pass
