from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from verbatim.auth import service
from verbatim.auth.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    LoginIn,
    RefreshIn,
    RegisterIn,
    TokenPair,
    UserOut,
)
from verbatim.deps import CurrentUser, SessionDep, SettingsDep
from verbatim.errors import Forbidden
from verbatim.kit.pagination import DEFAULT_LIMIT, Limit, Offset

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post(
    "/auth/register",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "registration_closed"},
        409: {"description": "email_taken"},
    },
)
async def register(body: RegisterIn, session: SessionDep, settings: SettingsDep) -> object:
    if not settings.allow_registration:
        raise Forbidden("Registration is closed on this server", code="registration_closed")
    return await service.create_user(session, body.email, body.password)


@router.post(
    "/auth/login", response_model=TokenPair, responses={401: {"description": "invalid_credentials"}}
)
async def login(body: LoginIn, session: SessionDep, settings: SettingsDep) -> object:
    user = await service.authenticate(session, body.email, body.password)
    return service.issue_tokens(user, settings)


@router.post(
    "/auth/login/form",
    response_model=TokenPair,
    include_in_schema=True,
    responses={401: {"description": "invalid_credentials, invalid_token"}},
)
async def login_form(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    """The OAuth2 password flow, so the OpenAPI page's Authorize button works."""
    user = await service.authenticate(session, form.username, form.password)
    return service.issue_tokens(user, settings)


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses={401: {"description": "invalid_credentials, invalid_token"}},
)
async def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep) -> object:
    user = await service.user_from_token(session, body.refresh_token, settings, "refresh")
    return service.issue_tokens(user, settings)


@router.get("/auth/me", response_model=UserOut)
async def me(user: CurrentUser) -> object:
    return user


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyIn, user: CurrentUser, session: SessionDep) -> object:
    key, secret = await service.create_api_key(session, user, body.name)
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(key).model_dump(), "key": secret}
    )


@router.get("/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(
    user: CurrentUser, session: SessionDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> object:
    """Your API keys, newest first (a bare list; page with limit and offset)."""
    return await service.list_api_keys(session, user, limit=limit, offset=offset)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_api_key(key_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    return await service.revoke_api_key(session, user, key_id)
