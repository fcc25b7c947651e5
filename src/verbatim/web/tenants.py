"""Organisations in the web UI: the switcher of the active tenant (a cookie holding the choice,
checked against membership on every request), an organisation's members (roles, removal) and
invitations (create, list, revoke, accept by link). Every action calls `tenancy.service` with
the signed-in user, so the API's rules hold unchanged: a non-member gets 404 pages, a member
without the right role the service's refusal."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from verbatim.deps import ServicesDep, SessionDep
from verbatim.errors import AppError, NotFound
from verbatim.models import TenantKind, TenantRole
from verbatim.tenancy import service
from verbatim.tenancy.schemas import InvitationIn, RoleIn, TenantIn
from verbatim.web import session as web_session
from verbatim.web.pages import (
    Viewer,
    _form,
    _message,
    _safe_next,
    _to_signin,
    _viewer,
    not_found,
    render,
)

router = APIRouter()
ROLES = [r.value for r in TenantRole if r != TenantRole.owner]


@router.post("/tenant")
async def switch_tenant(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    """Make a tenant the active one: the personal library, or an organisation of the caller."""
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    form = await _form(request, viewer, services)
    try:
        tenant_id = uuid.UUID(form.get("tenant_id", ""))
        await service.member_of(session, viewer.user, tenant_id)
    except (ValueError, NotFound):
        return not_found(request, viewer)
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    personal = tenant_id == viewer.user.tenant_id
    web_session.set_tenant_cookie(
        request, response, None if personal else tenant_id, services.settings
    )
    return response


@router.get("/organisations")
async def organisations(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    return render(request, "organisations.html", viewer, active="organisations")


@router.post("/organisations")
async def create_organisation(
    request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    form = await _form(request, viewer, services)
    try:
        body = TenantIn(name=form.get("name", "").strip())
    except ValidationError as exc:
        return render(
            request,
            "organisations.html",
            viewer,
            422,
            active="organisations",
            error=_message(exc),
            org_name=form.get("name", ""),
        )
    tenant = await service.create_organisation(session, viewer.user, body.name)
    return RedirectResponse(f"/organisations/{tenant.id}", status_code=303)


async def _org_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    tenant_id: uuid.UUID,
    status: int = 200,
    **extra: Any,
) -> Response:
    try:
        found = await service.member_of(session, viewer.user, tenant_id)
    except NotFound:
        return not_found(request, viewer)
    manager = found.role in (TenantRole.owner, TenantRole.admin)
    return render(
        request,
        "organisation.html",
        viewer,
        status,
        active="organisations",
        org=found.tenant,
        my_role=found.role.value,
        organisation=found.tenant.kind == TenantKind.organisation,
        manager=manager,
        members=await service.list_members(session, viewer.user, tenant_id),
        invitations=(
            await service.list_invitations(session, viewer.user, tenant_id) if manager else []
        ),
        roles=ROLES,
        **extra,
    )


@router.get("/organisations/{tenant_id}")
async def organisation(
    tenant_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    return await _org_page(request, session, viewer, tenant_id)


async def _act(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    tenant_id: uuid.UUID,
    action: Any,
) -> Response:
    """Run one membership action; a refusal is shown on the page, with nothing changed."""
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    form = await _form(request, viewer, services)
    try:
        async with session.begin_nested():
            extra = await action(viewer, form) or {}
    except NotFound:
        return not_found(request, viewer)
    except ValidationError as exc:
        return await _org_page(request, session, viewer, tenant_id, 422, error=_message(exc))
    except AppError as exc:
        return await _org_page(
            request, session, viewer, tenant_id, exc.status_code, error=exc.message
        )
    if extra:
        return await _org_page(request, session, viewer, tenant_id, 201, **extra)
    return RedirectResponse(f"/organisations/{tenant_id}", status_code=303)


@router.post("/organisations/{tenant_id}/members/{member_id}/role")
async def change_role(
    tenant_id: uuid.UUID,
    member_id: uuid.UUID,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    async def action(viewer: Viewer, form: dict[str, str]) -> None:
        body = RoleIn.model_validate({"role": form.get("role", "")})
        await service.change_role(session, viewer.user, tenant_id, member_id, body.role)

    return await _act(request, services, session, tenant_id, action)


@router.post("/organisations/{tenant_id}/members/{member_id}/remove")
async def remove_member(
    tenant_id: uuid.UUID,
    member_id: uuid.UUID,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    async def action(viewer: Viewer, form: dict[str, str]) -> None:
        await service.remove_member(session, viewer.user, tenant_id, member_id)

    return await _act(request, services, session, tenant_id, action)


@router.post("/organisations/{tenant_id}/invitations")
async def invite(
    tenant_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    async def action(viewer: Viewer, form: dict[str, str]) -> dict[str, Any]:
        body = InvitationIn.model_validate(
            {"email": form.get("email", "").strip(), "role": form.get("role", "member")}
        )
        invitation, token = await service.invite(
            session, services.settings, viewer.user, tenant_id, str(body.email), body.role
        )
        base = (services.settings.public_url or str(request.base_url)).rstrip("/")
        return {"invite_link": f"{base}/invitations/accept?token={token}", "invited": invitation}

    return await _act(request, services, session, tenant_id, action)


@router.post("/organisations/{tenant_id}/invitations/{invitation_id}/revoke")
async def revoke(
    tenant_id: uuid.UUID,
    invitation_id: uuid.UUID,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    async def action(viewer: Viewer, form: dict[str, str]) -> None:
        await service.revoke_invitation(session, viewer.user, tenant_id, invitation_id)

    return await _act(request, services, session, tenant_id, action)


@router.get("/invitations/accept")
async def accept_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    return render(
        request,
        "accept.html",
        viewer,
        active="organisations",
        token=request.query_params.get("token", "")[:2000],
    )


@router.post("/invitations/accept")
async def accept(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    form = await _form(request, viewer, services)
    token = form.get("token", "")[:2000]
    try:
        async with session.begin_nested():
            tenant = await service.accept(session, services.settings, viewer.user, token)
    except AppError as exc:
        return render(
            request,
            "accept.html",
            viewer,
            exc.status_code,
            active="organisations",
            token=token,
            error=exc.message,
        )
    # Joined: act in the organisation straight away.
    response = RedirectResponse("/library", status_code=303)
    web_session.set_tenant_cookie(request, response, tenant.id, services.settings)
    return response
