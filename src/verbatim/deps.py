"""Request dependencies: the unit of work, and who is calling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.auth import service as auth_service
from verbatim.auth.security import API_KEY_PREFIX
from verbatim.config import Settings
from verbatim.db import session_scope
from verbatim.errors import Unauthorized
from verbatim.models import User
from verbatim.services import Services

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login/form", auto_error=False)


def get_services_dep(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services_dep)]


def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed in exactly this one place, before the response."""
    async with session_scope(services.sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def current_user(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> User:
    api_key = request.headers.get("x-api-key")
    if api_key:
        return await auth_service.user_from_api_key(session, api_key)
    if token:
        if token.startswith(API_KEY_PREFIX):
            return await auth_service.user_from_api_key(session, token)
        return await auth_service.user_from_token(session, token, settings, "access")
    raise Unauthorized()


CurrentUser = Annotated[User, Depends(current_user)]
