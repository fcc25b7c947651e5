"""The webhooks page: a person's endpoints (create with the secret shown once, edit, enable,
delete, send a test) and each endpoint's delivery log in cursor pages, with redelivery. Forms
post here and call `webhooks.service` with the signed-in user, as the REST API does, so the
same rules hold (another user's endpoint is a 404 page; a refused URL is the API's message)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from verbatim.deps import ServicesDep, SessionDep
from verbatim.errors import AppError, NotFound
from verbatim.kit.pagination import PageRequest, decode_cursor
from verbatim.web.pages import Viewer, _form, _message, _to_signin, _viewer, not_found, render
from verbatim.webhooks import events as webhook_events
from verbatim.webhooks import service
from verbatim.webhooks.schemas import WebhookCreate, WebhookUpdate

router = APIRouter()
DELIVERIES_PER_PAGE = 20


async def _list_page(
    request: Request, session: SessionDep, viewer: Viewer, status: int = 200, **extra: Any
) -> Response:
    return render(
        request,
        "webhooks.html",
        viewer,
        status,
        active="webhooks",
        hooks=await service.list_endpoints(session, viewer.user),
        event_types=list(webhook_events.EVENT_TYPES),
        default_events=list(webhook_events.DEFAULT_EVENTS),
        **extra,
    )


@router.get("/webhooks")
async def webhooks_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    return await _list_page(request, session, viewer)


async def _events(request: Request) -> list[str]:
    form = await request.form()  # cached by Starlette: _form read it already
    return [v for v in form.getlist("events") if isinstance(v, str)]


@router.post("/webhooks")
async def create_webhook(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    form = await _form(request, viewer, services)
    entered = {"url": form.get("url", "").strip(), "description": form.get("description", "")}
    chosen = await _events(request)
    try:
        body = WebhookCreate(url=entered["url"], events=chosen, description=entered["description"])
        async with session.begin_nested():  # a refusal leaves nothing behind
            hook = await service.create(session, services.settings, viewer.user, body)
    except ValidationError as exc:
        return await _list_page(
            request, session, viewer, 422, error=_message(exc), entered=entered, chosen=chosen
        )
    except AppError as exc:
        return await _list_page(
            request,
            session,
            viewer,
            exc.status_code,
            error=exc.message,
            entered=entered,
            chosen=chosen,
        )
    return await _list_page(request, session, viewer, 201, new_hook=hook, new_secret=hook.secret)


def _cursor(request: Request, hook_id: uuid.UUID) -> PageRequest:
    key: bytes = request.app.state.cursor_key
    scope = f"/webhooks/{hook_id}"
    raw = request.query_params.get("cursor") or None
    after = decode_cursor(key, scope, raw[:1000]) if raw else None
    return PageRequest(limit=DELIVERIES_PER_PAGE, after=after, scope=scope, key=key)


async def _detail(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    hook_id: uuid.UUID,
    status: int = 200,
    **extra: Any,
) -> Response:
    try:
        hook = await service.get(session, viewer.user, hook_id)
    except NotFound:
        return not_found(request, viewer)
    error = extra.pop("error", None)
    try:
        page = await service.list_deliveries(
            session, viewer.user, hook_id, None, _cursor(request, hook_id)
        )
    except AppError as exc:  # a cursor that is not ours, or damaged
        page, error, status = None, exc.message, exc.status_code
    return render(
        request,
        "webhook.html",
        viewer,
        status,
        active="webhooks",
        hook=hook,
        deliveries=page.items if page else [],
        next_cursor=page.next_cursor if page else None,
        first_page=not request.query_params.get("cursor"),
        event_types=list(webhook_events.EVENT_TYPES),
        error=error,
        **extra,
    )


@router.get("/webhooks/{hook_id}")
async def webhook_page(
    hook_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    return await _detail(request, session, viewer, hook_id)


@router.post("/webhooks/{hook_id}")
async def update_webhook(
    hook_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    form = await _form(request, viewer, services)
    try:
        body = WebhookUpdate(
            url=form.get("url", "").strip(),
            events=await _events(request),
            description=form.get("description", ""),
            enabled=form.get("enabled") == "on",
        )
        async with session.begin_nested():  # a refused URL must not keep the new events
            await service.update(session, services.settings, viewer.user, hook_id, body)
    except ValidationError as exc:
        return await _detail(request, session, viewer, hook_id, 422, error=_message(exc))
    except NotFound:
        return not_found(request, viewer)
    except AppError as exc:
        return await _detail(request, session, viewer, hook_id, exc.status_code, error=exc.message)
    return RedirectResponse(f"/webhooks/{hook_id}?saved=1", status_code=303)


@router.post("/webhooks/{hook_id}/delete")
async def delete_webhook(
    hook_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    await _form(request, viewer, services)
    try:
        await service.delete(session, viewer.user, hook_id)
    except NotFound:
        return not_found(request, viewer)
    return RedirectResponse("/webhooks", status_code=303)


@router.post("/webhooks/{hook_id}/test")
async def test_webhook(
    hook_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    await _form(request, viewer, services)
    try:
        async with session.begin_nested():
            await service.send_test(session, viewer.user, hook_id)
    except NotFound:
        return not_found(request, viewer)
    except AppError as exc:
        return await _detail(request, session, viewer, hook_id, exc.status_code, error=exc.message)
    return RedirectResponse(f"/webhooks/{hook_id}?sent=1", status_code=303)


@router.post("/webhooks/{hook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    hook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    await _form(request, viewer, services)
    try:
        async with session.begin_nested():
            await service.redeliver(session, viewer.user, hook_id, delivery_id)
    except NotFound:
        return not_found(request, viewer)
    except AppError as exc:
        return await _detail(request, session, viewer, hook_id, exc.status_code, error=exc.message)
    return RedirectResponse(f"/webhooks/{hook_id}?redelivered=1", status_code=303)
