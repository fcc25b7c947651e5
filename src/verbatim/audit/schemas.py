from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from verbatim.kit.schemas import CursorPage


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    actor_user_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    action: str
    target_type: str | None
    target_id: str | None
    client_address: str | None
    request_id: str | None
    details: dict[str, Any] | None


class AuditPage(CursorPage[AuditOut]):
    pass
