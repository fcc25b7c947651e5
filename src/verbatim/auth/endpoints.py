from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from verbatim.auth import service
from verbatim.auth.deps import AdminUser, PasswordSessionUser, client_address
from verbatim.auth.schemas import (
    AdminUserIn,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    LoginIn,
    PasswordChangeIn,
    RefreshIn,
    RegisterIn,
    TokenPair,
    UserOut,
    UserPreferencesIn,
)
from verbatim.deps import CurrentUser, ServicesDep, SessionDep, SettingsDep
from verbatim.errors import ValidationFailed, error_response
from verbatim.kit.pagination import DEFAULT_LIMIT, Limit, Offset
from verbatim.kit.schemas import Page
from verbatim.models import Role, User

router = APIRouter(prefix="/api/v1", tags=["auth"])

Responses = dict[int | str, dict[str, Any]]
_LIMITED: Responses = {429: {"description": "rate_limited (with Retry-After)"}}
_TOKEN: Responses = {401: {"description": "invalid_token"}}
_PASSWORD_SESSION: Responses = {
    401: {"description": "not_authenticated, invalid_token"},
    403: {"description": "password_session_required (an API key was used)"},
}


@router.post(
    "/auth/register",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "registration_closed"},
        409: {"description": "email_taken"},
        **_LIMITED,
    },
)
async def register(
    body: RegisterIn, request: Request, services: ServicesDep, session: SessionDep
) -> object:
    """Create an account (403 `registration_closed` when VERBATIM_REGISTRATION=closed)."""
    return await service.register(
        services.sessionmaker,
        session,
        services.settings,
        body.email,
        body.password,
        client_address(request),
    )


@router.post(
    "/auth/login",
    response_model=TokenPair,
    responses={
        401: {"description": "invalid_credentials"},
        403: {"description": "account_disabled"},
        **_LIMITED,
    },
)
async def login(
    body: LoginIn, request: Request, services: ServicesDep, session: SessionDep
) -> object:
    return await service.login(
        services.sessionmaker,
        session,
        services.settings,
        body.email,
        body.password,
        client_address(request),
    )


@router.post(
    "/auth/login/form",
    response_model=TokenPair,
    responses={401: {"description": "invalid_credentials"}, **_LIMITED},
)
async def login_form(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> object:
    """The OAuth2 password flow, so the OpenAPI page's Authorize button works."""
    return await service.login(
        services.sessionmaker,
        session,
        services.settings,
        form.username,
        form.password,
        client_address(request),
    )


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses={401: {"description": "invalid_token, token_reused (the family is revoked)"}},
)
async def refresh(
    body: RefreshIn, request: Request, session: SessionDep, settings: SettingsDep
) -> object:
    """A new pair for a refresh token, which is spent: presenting it again revokes its family."""
    try:
        return await service.refresh(session, settings, body.refresh_token)
    except service.RefreshTokenReused as exc:
        return error_response(request, exc)  # answered, and the family's revocation committed


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=_TOKEN)
async def logout(body: RefreshIn, session: SessionDep, settings: SettingsDep) -> Response:
    """Revoke the presented refresh token and every token of its family (this login)."""
    await service.logout(session, settings, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=_PASSWORD_SESSION
)
async def logout_all(user: PasswordSessionUser, session: SessionDep) -> Response:
    """Log out everywhere: every refresh token, and every access token issued until now."""
    await service.logout_all(session, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/password",
    response_model=TokenPair,
    responses={
        401: {"description": "not_authenticated, invalid_token"},
        403: {"description": "wrong_password, password_session_required"},
        422: {"description": "validation_error, password_unchanged"},
        **_LIMITED,
    },
)
async def change_password(
    body: PasswordChangeIn,
    request: Request,
    user: PasswordSessionUser,
    services: ServicesDep,
    session: SessionDep,
) -> object:
    """Change the password; every other session is logged out, this one gets a new pair."""
    if body.new_password == body.current_password:
        raise ValidationFailed(
            "The new password is the same as the current one", code="password_unchanged"
        )
    return await service.change_password(
        services.sessionmaker,
        session,
        services.settings,
        user,
        body.current_password,
        body.new_password,
        client_address(request),
    )


@router.get("/auth/me", response_model=UserOut)
async def me(user: CurrentUser) -> object:
    return user


@router.patch("/auth/me", response_model=UserOut)
async def update_me(body: UserPreferencesIn, user: CurrentUser, session: SessionDep) -> object:
    """Change your preferences: `openai_store` (keep OpenAI-API requests in the library)."""
    fresh = await session.get(User, user.id, with_for_update=True, populate_existing=True)
    assert fresh is not None
    if body.openai_store is not None:
        fresh.openai_store = body.openai_store
    return fresh


@router.post(
    "/admin/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    tags=["admin"],
    responses={
        401: {"description": "not_authenticated, invalid_token"},
        403: {"description": "admin_required, password_session_required"},
        409: {"description": "email_taken"},
    },
)
async def admin_create_user(body: AdminUserIn, admin: AdminUser, session: SessionDep) -> object:
    """Create an account (administrators; works whether registration is open or closed)."""
    return await service.create_user(session, body.email, body.password, Role(body.role))


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=_PASSWORD_SESSION,
)
async def create_api_key(body: ApiKeyIn, user: PasswordSessionUser, session: SessionDep) -> object:
    key, secret = await service.create_api_key(session, user, body.name, body.tenant_id)
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(key).model_dump(), "key": secret}
    )


@router.get("/api-keys", response_model=Page[ApiKeyOut], responses=_PASSWORD_SESSION)
async def list_api_keys(
    user: PasswordSessionUser,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> object:
    items, total = await service.list_api_keys(session, user, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.delete(
    "/api-keys/{key_id}",
    response_model=ApiKeyOut,
    responses={**_PASSWORD_SESSION, 404: {"description": "not_found"}},
)
async def revoke_api_key(
    key_id: uuid.UUID, user: PasswordSessionUser, session: SessionDep
) -> object:
    return await service.revoke_api_key(session, user, key_id)
