from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, Strict

from verbatim.kit.schemas import RequestModel


class RegisterIn(RequestModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)


class LoginIn(RequestModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class PasswordChangeIn(RequestModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class AdminUserIn(RequestModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)
    role: Literal["user", "admin"] = "user"


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: str
    tenant_id: uuid.UUID
    created_at: datetime
    is_active: bool = True
    openai_store: bool = Field(
        description="OpenAI-compatible API: keep each request's audio and transcript in the "
        "library unless the request says otherwise"
    )


class UserPreferencesIn(RequestModel):
    openai_store: bool | None = None


class ApiKeyIn(RequestModel):
    # No control characters: a NUL would reach PostgreSQL (which refuses it) as a 500.
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    # The tenant the key acts in (default: your personal tenant); you must be a member.
    tenant_id: Annotated[uuid.UUID, Strict(False)] | None = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    tenant_id: uuid.UUID


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret; shown only once.")
