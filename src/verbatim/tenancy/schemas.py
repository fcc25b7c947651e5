from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, Strict

from verbatim.kit.schemas import RequestModel
from verbatim.models import JobStatus, JobType, TenantKind, TenantRole

_NAME = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")


class TenantIn(RequestModel):
    name: str = _NAME


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: TenantKind
    role: TenantRole | None
    created_at: datetime


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    role: TenantRole
    joined_at: datetime


class RoleIn(RequestModel):
    role: Annotated[TenantRole, Strict(False)]


class TransferIn(RequestModel):
    user_id: Annotated[uuid.UUID, Strict(False)]


class InvitationIn(RequestModel):
    email: EmailStr
    role: Annotated[TenantRole, Strict(False)] = TenantRole.member


class InvitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: TenantRole
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class InvitationCreated(InvitationOut):
    token: str = Field(description="The signed invitation; shown once, to pass on.")
    accept_url: str
    mailed: bool = Field(description="Whether it was sent by mail (VERBATIM_SMTP_HOST)")


class AcceptIn(RequestModel):
    token: str = Field(min_length=1, max_length=2048)


class TenantJobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    type: JobType
    status: JobStatus
    progress: float
    stage: str | None
    error_code: str | None
    audio_file_id: uuid.UUID | None
    transcription_id: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class UsageOut(BaseModel):
    limits: dict[str, int]
    storage_bytes: int
    active_jobs: int
    audio_minutes_this_month: dict[str, float]
    month_resets_at: datetime
    members: list[dict[str, Any]] = []
