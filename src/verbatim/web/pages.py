"""The web UI's pages. Each page signs the caller in from the session cookie and calls the same
services as the REST API (so ownership rules apply unchanged: another user's id is a 404 page).
Forms post here with the session's CSRF token; everything else the pages do, their scripts do
through the REST API with the same cookie and the token in `X-CSRF-Token`."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select

from verbatim import __version__
from verbatim.auth import service as auth_service
from verbatim.auth.deps import client_address
from verbatim.auth.schemas import ApiKeyIn, PasswordChangeIn, RegisterIn
from verbatim.deps import ServicesDep, SessionDep
from verbatim.errors import AppError, Forbidden, NotFound
from verbatim.kit.pagination import PageRequest
from verbatim.library.collections import service as collections_service
from verbatim.library.topics import service as topics_service
from verbatim.models import (
    ApiKey,
    AudioFile,
    Job,
    JobStatus,
    JobType,
    Transcription,
    TranscriptionStatus,
    User,
)
from verbatim.models.transcription import RECONCILE_ENGINE
from verbatim.speakers import service as speakers_service
from verbatim.tenancy import service as tenancy_service
from verbatim.tenancy.resolve import resolve as resolve_tenant
from verbatim.tenancy.scope import access_of, attach, visible
from verbatim.transcriptions import export
from verbatim.transcriptions.service import get_transcription
from verbatim.versions import service as versions_service
from verbatim.web import library, transcript
from verbatim.web import session as web_session
from verbatim.web.static import STATIC_DIR

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["clock"] = transcript.clock
# Bust browser caches when the static files change (the version and the newest file's mtime).
templates.env.globals["asset_version"] = (
    f"{__version__}-{int(max(p.stat().st_mtime for p in STATIC_DIR.iterdir()))}"
)


@dataclass
class Viewer:
    user: User
    csrf: str
    token: str
    tenants: list[dict[str, Any]] = field(default_factory=list)
    tenant: dict[str, Any] | None = None  # the active one
    stale_tenant: bool = False
    # Whether the active tenant access may write (decision 0019: viewers, and administrators
    # looking in, read only). The pages offer no control that writes when it is False: the API
    # would refuse it with 403 `tenant_read_only`.
    can_write: bool = True


async def _viewer(request: Request, services: ServicesDep, session: SessionDep) -> Viewer | None:
    token = web_session.session_token(request)
    if not token:
        return None
    try:
        user = await web_session.user_from_session(session, token, services.settings)
    except AppError:
        return None
    viewer = Viewer(user, web_session.csrf_token(token, services.settings), token)
    # The active tenant: the browser's choice, checked against membership on every page.
    chosen = web_session.chosen_tenant(request)
    if chosen is not None and chosen != user.tenant_id:
        try:
            access = await resolve_tenant(session, user, chosen, None)
        except AppError:
            viewer.stale_tenant = True  # no longer a member: the personal library, and a notice
        else:
            if not access.admin_override:  # an administrator switches only to their own
                attach(user, access)
    viewer.tenants = await tenancy_service.my_tenants(session, user)
    access = access_of(user)
    viewer.tenant = next((t for t in viewer.tenants if t["id"] == access.tenant_id), None)
    viewer.can_write = access.can_write
    return viewer


def _to_signin(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)


def _safe_next(value: str | None) -> str:
    # Only a path on this site: never an open redirect.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/library"


def render(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "csrf": viewer.csrf if viewer else "", **context},
        status_code=status_code,
    )


def not_found(request: Request, viewer: Viewer | None) -> HTMLResponse:
    return render(
        request,
        "error.html",
        viewer,
        404,
        title="Not found",
        message="There is nothing here, or it is not yours.",
    )


def _same_origin(request: Request) -> None:
    """A form posted from another site is refused, even before there is a session to protect
    (signing a victim in to the attacker's account is login CSRF)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden("This form was posted from another site", code="csrf_failed")


async def _form(request: Request, viewer: Viewer | None, services: ServicesDep) -> dict[str, str]:
    _same_origin(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if viewer is not None:
        web_session.check_csrf(request, viewer.token, services.settings, values.get("csrf_token"))
    return values


def _message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    return f"{field.replace('_', ' ')}: {first.get('msg', 'invalid')}"


# --- signing in and out -------------------------------------------------------------------------


@router.get("/")
async def home(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    return RedirectResponse("/library" if viewer else "/signin", status_code=303)


@router.get("/signin")
async def signin_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "signin.html", None, next=request.query_params.get("next", ""))


@router.post("/signin")
async def signin(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    form = await _form(request, None, services)
    email, password = form.get("email", "").strip(), form.get("password", "")
    try:
        tokens = await auth_service.login(
            services.sessionmaker,
            session,
            services.settings,
            email,
            password,
            client_address(request),
        )
    except AppError as exc:
        return render(
            request,
            "signin.html",
            None,
            exc.status_code,
            error=exc.message,
            email=email,
            next=form.get("next", ""),
        )
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    web_session.set_cookie(request, response, str(tokens["refresh_token"]), services.settings)
    return response


@router.get("/register")
async def register_page(request: Request) -> Response:
    return render(request, "register.html", None)


@router.post("/register")
async def register(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    form = await _form(request, None, services)
    email = form.get("email", "").strip()
    try:
        body = RegisterIn(email=email, password=form.get("password", ""))
        if form.get("password") != form.get("password2"):
            return render(
                request, "register.html", None, 422, email=email, error="The two passwords differ."
            )
        user = await auth_service.register(
            services.sessionmaker,
            session,
            services.settings,
            body.email,
            body.password,
            client_address(request),
        )
        tokens = await auth_service.issue_tokens(session, user, services.settings)
    except ValidationError as exc:
        return render(request, "register.html", None, 422, email=email, error=_message(exc))
    except AppError as exc:
        return render(
            request, "register.html", None, exc.status_code, email=email, error=exc.message
        )
    response = RedirectResponse("/library", status_code=303)
    web_session.set_cookie(request, response, str(tokens["refresh_token"]), services.settings)
    return response


@router.post("/signout")
async def signout(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is not None:
        await _form(request, viewer, services)
        await auth_service.logout(session, services.settings, viewer.token)
    response = RedirectResponse("/signin", status_code=303)
    web_session.clear_cookie(request, response)
    return response


# --- account: password and API keys ------------------------------------------------------------


async def _keys(session: SessionDep, user: User) -> list[ApiKey]:
    keys, _ = await auth_service.list_api_keys(session, user, limit=100)
    return keys


@router.get("/account")
async def account(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    return render(request, "account.html", viewer, keys=await _keys(session, viewer.user))


@router.post("/account/password")
async def change_password(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    form = await _form(request, viewer, services)
    keys = await _keys(session, viewer.user)
    try:
        body = PasswordChangeIn(
            current_password=form.get("current_password", ""),
            new_password=form.get("new_password", ""),
        )
        if body.new_password == body.current_password:
            raise AppError(
                "The new password is the same as the current one", code="password_unchanged"
            )
        tokens = await auth_service.change_password(
            services.sessionmaker,
            session,
            services.settings,
            viewer.user,
            body.current_password,
            body.new_password,
            client_address(request),
        )
    except ValidationError as exc:
        return render(request, "account.html", viewer, 422, keys=keys, password_error=_message(exc))
    except AppError as exc:
        return render(
            request, "account.html", viewer, exc.status_code, keys=keys, password_error=exc.message
        )
    # Every other session is now signed out; this one continues with a fresh token.
    token = str(tokens["refresh_token"])
    viewer = replace(viewer, csrf=web_session.csrf_token(token, services.settings), token=token)
    response = render(
        request,
        "account.html",
        viewer,
        keys=keys,
        status_notice="Password changed. Your other sessions are signed out.",
    )
    web_session.set_cookie(request, response, token, services.settings)
    return response


@router.post("/account/keys")
async def create_key(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    form = await _form(request, viewer, services)
    try:
        body = ApiKeyIn(name=form.get("name", "").strip())
    except ValidationError as exc:
        return render(
            request,
            "account.html",
            viewer,
            422,
            keys=await _keys(session, viewer.user),
            key_error=_message(exc),
        )
    key, secret = await auth_service.create_api_key(session, viewer.user, body.name)
    return render(
        request,
        "account.html",
        viewer,
        201,
        keys=await _keys(session, viewer.user),
        new_key=key,
        new_secret=secret,
    )


@router.post("/account/keys/{key_id}/revoke")
async def revoke_key(
    key_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    await _form(request, viewer, services)
    try:
        await auth_service.revoke_api_key(session, viewer.user, key_id)
    except NotFound:
        return not_found(request, viewer)
    return RedirectResponse("/account#keys", status_code=303)


# --- library ----------------------------------------------------------------------------------


@router.get("/library")
async def library_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    q = request.query_params
    try:
        page = max(1, min(int(q.get("page", "1")), 1_000_000))
    except ValueError:
        page = 1
    filters = library.LibraryFilters(
        q=q.get("q", "")[:200].replace("\x00", ""),
        status=q.get("status", "") if q.get("status", "") in library.STATUSES else "",
        language=q.get("language", "")[:10] if q.get("language", "").isalpha() else "",
        sort=q.get("sort", "newest") if q.get("sort") in library.SORTS else "newest",
        page=page,
    )
    rows, total = await library.library_page(session, viewer.user, filters)
    pages = max(1, math.ceil(total / library.PAGE_SIZE))
    base = {
        k: v
        for k, v in (
            ("q", filters.q),
            ("status", filters.status),
            ("language", filters.language),
            ("sort", filters.sort),
        )
        if v
    }

    def page_url(n: int) -> str:
        return "/library?" + urlencode({**base, "page": n})

    collections = await _collections(session, viewer.user)
    return render(
        request,
        "library.html",
        viewer,
        rows=rows,
        total=total,
        filters=filters,
        pages=pages,
        page_url=page_url,
        languages=await library.languages(session, viewer.user),
        statuses=library.STATUSES,
        sorts=list(library.SORTS),
        collections=collections,
        formats=list(export.FORMATS),
        direct_from=services.settings.web_direct_upload_bytes,
    )


async def _collections(session: SessionDep, user: User) -> list[dict[str, Any]]:
    page = await collections_service.list_collections(session, user, page=PageRequest(limit=200))
    described: list[dict[str, Any]] = await collections_service.describe(session, page.items)
    return described


# --- a recording -------------------------------------------------------------------------------


@router.get("/recordings/{audio_id}")
async def recording(
    audio_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    user = viewer.user
    audio = await session.scalar(
        select(AudioFile).where(AudioFile.id == audio_id, visible(AudioFile, user))
    )
    if audio is None:
        return not_found(request, viewer)
    chosen = request.query_params.get("transcription")
    t: Transcription | None = None
    if chosen:
        try:
            t = await get_transcription(session, user, uuid.UUID(chosen))
        except (ValueError, NotFound):
            return not_found(request, viewer)
        if t.audio_file_id != audio.id:
            return not_found(request, viewer)
    else:
        t = await session.scalar(
            select(Transcription)
            .where(
                Transcription.audio_file_id == audio.id,
                visible(Transcription, user),
                Transcription.parent_id.is_(None),
            )
            .order_by(Transcription.created_at.desc())
            .limit(1)
        )
    context: dict[str, Any] = {
        "audio": audio,
        "t": t,
        "turns": [],
        "speakers": [],
        "topics": [],
        "versions": [],
        "current_version": None,
        "job": None,
        "metrics": None,
    }
    if t is not None and t.status in (TranscriptionStatus.pending, TranscriptionStatus.running):
        # Its job, so the page can follow the job's event stream.
        context["job"] = await session.scalar(
            select(Job)
            .where(
                Job.transcription_id == t.id,
                # A multi-engine transcription is followed through its reconcile job.
                Job.type.in_((JobType.transcription, JobType.transcription_reconcile)),
                Job.status.in_((JobStatus.pending, JobStatus.running)),
                visible(Job, user),
            )
            .order_by(Job.created_at.desc())
            .limit(1)
        )
    if t is not None:
        speakers = await speakers_service.transcription_speakers(session, t.id)
        context["turns"] = await transcript.turns(session, t.id)
        context["speakers"] = speakers
        context["colours"] = transcript.speaker_colours([s.label for s in speakers])
        context["names"] = {s.label: s.display_name or s.label for s in speakers}
        context["transcript_html"] = transcript.article_html(
            context["turns"], context["names"], context["colours"], editable=viewer.can_write
        )
        topics, _ = await topics_service.transcription_topics(
            session, user, t.id, status=None, limit=100, offset=0
        )
        context["topics"] = topics
        versions, current = await versions_service.list_versions(session, user, t.id)
        context["versions"] = versions
        context["current_version"] = current
        if t.engine == RECONCILE_ENGINE and t.status is TranscriptionStatus.completed:
            # How far the engines agreed, and where a person should check (decision 0024).
            await session.refresh(t, ["metrics"])
            context["metrics"] = t.metrics
    context["collections"] = await _collections(session, user)
    context["formats"] = list(export.FORMATS)
    return render(request, "recording.html", viewer, **context)


# --- search -----------------------------------------------------------------------------------


@router.get("/search")
async def search_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    q = request.query_params
    query = q.get("q", "").strip()
    mode = q.get("mode", "hybrid") if q.get("mode") in ("hybrid", "semantic", "text") else "hybrid"
    context: dict[str, Any] = {
        "query": query,
        "mode": mode,
        "groups": [],
        "error": None,
        "language": q.get("language", ""),
        "collection": q.get("collection", ""),
    }
    context["collections"] = await _collections(session, viewer.user)
    if query:
        try:
            result = await _run_search(request, services, session, viewer.user, query, mode)
        except AppError as exc:
            context["error"] = exc.message
            return render(request, "search.html", viewer, exc.status_code, **context)
        groups: dict[uuid.UUID, dict[str, Any]] = {}
        for hit in result["items"]:
            group = groups.setdefault(
                hit["transcription_id"],
                {
                    "title": hit["title"],
                    "audio_file_id": hit["audio_file_id"],
                    "transcription_id": hit["transcription_id"],
                    "hits": [],
                },
            )
            group["hits"].append(hit)
        # Chunks keep speaker labels; show the names the user gave them.
        for group in groups.values():
            names = await speakers_service.speaker_names(session, group["transcription_id"])
            for hit in group["hits"]:
                if hit.get("speaker"):
                    hit["speaker"] = names.get(hit["speaker"], hit["speaker"])
        context["groups"] = list(groups.values())
    return render(request, "search.html", viewer, **context)


async def _run_search(
    request: Request, services: ServicesDep, session: SessionDep, user: User, query: str, mode: str
) -> dict[str, Any]:
    from verbatim.search import embedding
    from verbatim.search import service as search_service
    from verbatim.search.query import Filters
    from verbatim.search.schemas import SearchMode

    settings = services.settings
    q = request.query_params
    collection_id = None
    if q.get("collection"):
        try:
            collection_id = uuid.UUID(q["collection"])
        except ValueError:
            raise NotFound("Collection not found", code="collection_not_found") from None
    language = q.get("language") or None
    if language is not None and not (language.isalpha() and 2 <= len(language) <= 3):
        language = None
    req = search_service.SearchRequest(
        q=query,
        mode=SearchMode(mode),
        filters=Filters(collection_id=collection_id, language=language),
        limit=30,
        cursor=None,
        group_by_transcription=False,
    )
    result: dict[str, Any] = await search_service.search(
        session,
        settings,
        user,
        req,
        model=search_service.QueryModel(
            embed_query=lambda text: embedding.embed_query(text, settings),
            embed_sentences=None,
        ),
        media_url=lambda audio_id, start: f"/api/v1/audio/{audio_id}/content#t={start:.2f}",
    )
    return result


# --- organising ---------------------------------------------------------------------------------


@router.get("/collections")
async def collections_page(
    request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    return render(
        request, "collections.html", viewer, collections=await _collections(session, viewer.user)
    )


@router.get("/collections/{collection_id}")
async def collection_page(
    collection_id: uuid.UUID, request: Request, services: ServicesDep, session: SessionDep
) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    try:
        collection = await collections_service.get_collection(session, viewer.user, collection_id)
        items, total = await collections_service.list_items(
            session, viewer.user, collection_id, limit=500, offset=0
        )
    except NotFound:
        return not_found(request, viewer)
    return render(
        request,
        "collection.html",
        viewer,
        collection=collection,
        items=items,
        total=total,
        formats=list(export.FORMATS),
    )


@router.get("/topics")
async def topics_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    topics, _ = await topics_service.list_topics(session, viewer.user, limit=200, offset=0)
    return render(
        request, "topics.html", viewer, topics=await topics_service.describe(session, topics)
    )


@router.get("/voices")
async def voices_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    viewer = await _viewer(request, services, session)
    if viewer is None:
        return _to_signin(request)
    profiles, _ = await speakers_service.list_profiles(session, viewer.user, limit=200, offset=0)
    return render(request, "voices.html", viewer, profiles=profiles)
