"""The isolation test generator: walks every route of the OpenAPI document and checks, with two
organisations on one deployment, that

- every resource of organisation A is invisible to B (404, for reads and writes alike), and to
  A's owner acting in her personal tenant (a personal library and an organisation never mix);
- viewers cannot write (403 `tenant_read_only`), and manager-only reads refuse them;
- a removed member loses access at once: their JWT with `X-Tenant-ID` and their API key bound
  to the tenant both stop working on every route;
- list routes of B, and of A's owner's personal tenant, never show an id of A's resources.

`test_every_route_has_a_fixture` fails when a route appears with a path parameter this file has
no resource for, or a write with no request body, so a new route is covered or consciously
exempted before it ships.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from tests.tenancy.helpers import Teams, in_tenant, two_orgs, user_id
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.models import VoiceProfile
from verbatim.services import get_services

# Path parameter -> the fixture resource of organisation A it is filled with.
PARAMS = {
    "audio_id": "audio",
    "transcription_id": "transcription",
    "job_id": "job",
    "collection_id": "collection",
    "topic_id": "topic",
    "profile_id": "profile",
    "upload_id": "upload",
    "label": "label",
    "tenant_id": "tenant",
    "user_id": "member_user",
    "invitation_id": "invitation",
    "key_id": "key",
    "webhook_id": "webhook",
    "delivery_id": "delivery",
    "index": "segment_index",
    "version": "version_number",
}
# Where one name means another resource on one path.
PATH_PARAMS = {
    ("/api/v1/collections/{collection_id}/exports/{job_id}", "job_id"): "export_job",
    ("/api/v1/admin/users/{user_id}/disable", "user_id"): "alice_user",
    ("/api/v1/admin/jobs/{job_id}", "job_id"): "job",
}
# Routes outside tenancy, and why.
EXEMPT = {
    "/api/v1/storage/local/{token}": "the local backend's presigned URL: the signed token is the "
    "authority (tests/storage/test_local_presign.py), no caller, no tenant",
    "/v1/models/{model_id}": "the server's installed models and engines: no tenant's data",
}
# A valid body for every write with one: validation passes, so the answer is the access check.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/audio/{audio_id}/transcriptions"): {},
    ("PATCH", "/api/v1/transcriptions/{transcription_id}/speakers/{label}"): {
        "display_name": "Ann"
    },
    ("POST", "/api/v1/transcriptions/{transcription_id}/speakers/{label}/merge"): {
        "into": "SPEAKER_2"
    },
    ("PATCH", "/api/v1/voice-profiles/{profile_id}"): {"name": "Renamed"},
    ("PATCH", "/api/v1/collections/{collection_id}"): {"name": "Renamed"},
    ("POST", "/api/v1/collections/{collection_id}/items"): {"transcription_id": "@transcription"},
    ("POST", "/api/v1/collections/{collection_id}/items/{transcription_id}/move"): {
        "before": "@transcription"
    },
    ("POST", "/api/v1/collections/{collection_id}/exports"): {"formats": ["txt"]},
    ("PATCH", "/api/v1/topics/{topic_id}"): {"name": "Renamed"},
    ("PUT", "/api/v1/transcriptions/{transcription_id}/topics/{topic_id}"): {"status": "accepted"},
    ("PATCH", "/api/v1/tenants/{tenant_id}/members/{user_id}"): {"role": "member"},
    ("POST", "/api/v1/tenants/{tenant_id}/transfer"): {"user_id": "@member_user"},
    ("POST", "/api/v1/tenants/{tenant_id}/invitations"): {"email": "new@example.com"},
    ("PATCH", "/api/v1/admin/tenants/{tenant_id}/quotas"): {"storage_bytes": 1},
    ("POST", "/api/v1/admin/users"): {"email": "new@example.com", "password": "long enough 1"},
    ("POST", "/api/v1/tenants"): {"name": "Another"},
    ("POST", "/api/v1/invitations/accept"): {"token": "not-a-token"},
    ("POST", "/api/v1/webhooks"): {"url": "https://example.com/hook"},
    ("PATCH", "/api/v1/transcriptions/{transcription_id}/segments/{index}"): {"text": "Edited."},
    ("POST", "/api/v1/transcriptions/{transcription_id}/segments/{index}/split"): {"word_index": 1},
    ("POST", "/api/v1/transcriptions/{transcription_id}/segments/{index}/merge"): {},
    ("POST", "/api/v1/transcriptions/{transcription_id}/reprocess"): {"beam_size": 1},
    ("POST", "/v1/audio/transcriptions"): None,  # multipart, like /api/v1/audio
    ("POST", "/v1/audio/translations"): None,
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"description": "renamed"},
    # Writes without a path id: only the viewer check applies (they act in the caller's tenant).
    ("POST", "/api/v1/audio"): None,  # multipart; refused before the body is read
    ("POST", "/api/v1/audio/downloads"): {"url": "https://example.com/a.mp3"},
    ("POST", "/api/v1/audio/batch-delete"): {"ids": ["@audio"]},
    ("POST", "/api/v1/collections"): {"name": "New"},
    ("POST", "/api/v1/topics"): {"name": "New"},
    ("POST", "/api/v1/uploads"): {"filename": "a.wav", "size": 1000},
}
# Reads only owners and admins of the tenant get.
MANAGER_READS = {
    "/api/v1/audit",
    "/api/v1/tenants/{tenant_id}/jobs",
    "/api/v1/tenants/{tenant_id}/usage",
    "/api/v1/tenants/{tenant_id}/invitations",
}
# Writes a viewer may make, and why (never sent by the viewer here).
VIEWER_MAY = {
    ("POST", "/api/v1/tenants/{tenant_id}/leave"): "anyone may leave",
}
# Server-sent event streams without an id never end: the list-leak check cannot read them
# (tests/tenancy/test_event_streams.py checks what they show per tenant).
ENDLESS = {"/api/v1/events"}
# Query strings a route needs to answer at all.
QUERY = {
    "/api/v1/search": {"q": "speech test", "mode": "text"},
    "/api/v1/transcriptions/{transcription_id}/versions/diff": {"from": 1, "to": 2},
}
SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    params: tuple[str, ...]
    kind: str  # tenant | membership | per_user | admin | account
    has_body: bool


def kind_of(path: str) -> str:
    if path.startswith("/api/v1/admin/"):
        return "admin"
    if path.startswith(("/api/v1/api-keys", "/api/v1/webhooks")):
        return "per_user"  # a person's own settings, whichever tenant they act in
    if path.startswith(("/api/v1/tenants", "/api/v1/invitations")):
        return "membership"
    if path.startswith(("/api/v1/auth/", "/health/")):
        return "account"
    return "tenant"


def plan(app_openapi: dict[str, Any]) -> tuple[list[Route], list[str]]:
    """Every route, and what has no fixture (which must be empty)."""
    routes: list[Route] = []
    missing: list[str] = []
    for path, ops in app_openapi["paths"].items():
        if path in EXEMPT:
            continue
        params = tuple(re.findall(r"{(\w+)}", path))
        for method, op in ops.items():
            method = method.upper()
            for name in params:
                if (path, name) not in PATH_PARAMS and name not in PARAMS:
                    missing.append(f"{method} {path}: no resource for {{{name}}}")
            has_body = "requestBody" in op
            route = Route(method, path, params, kind_of(path), has_body)
            needs_body = has_body and method not in SAFE and (method, path) not in BODIES
            if needs_body and route.kind in ("tenant", "membership", "admin"):
                missing.append(f"{method} {path}: no request body in BODIES")
            routes.append(route)
    return routes, missing


def test_every_route_has_a_fixture() -> None:
    app = create_app(Settings(env="test", secret_key="k" * 48))
    routes, missing = plan(app.openapi())
    assert not missing, "routes without an isolation fixture:\n" + "\n".join(missing)
    # The generator really covers the domains (a broken walk would pass vacuously).
    with_ids = {r.path for r in routes if r.params and r.kind == "tenant"}
    assert len(with_ids) >= 20, with_ids
    assert "/api/v1/audio/{audio_id}" in with_ids


def test_plan_reports_a_route_without_fixture() -> None:
    fake = {"paths": {"/api/v1/widgets/{widget_id}": {"get": {}, "post": {"requestBody": {}}}}}
    _, missing = plan(fake)
    assert any("{widget_id}" in m for m in missing)
    assert any("no request body" in m for m in missing)


def url_for(route: Route, ids: dict[str, str]) -> str:
    url = route.path
    for name in route.params:
        key = PATH_PARAMS.get((route.path, name), PARAMS.get(name))
        url = url.replace("{" + name + "}", ids[key or name])
    return url


def body_for(route: Route, ids: dict[str, str]) -> Any:
    body = BODIES.get((route.method, route.path))

    def fill(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("@"):
            return ids[value[1:]]
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return fill(body)


async def call(
    client: httpx.AsyncClient,
    route: Route,
    ids: dict[str, str],
    headers: dict[str, str],
) -> httpx.Response:
    body = body_for(route, ids)
    return await client.request(
        route.method,
        url_for(route, ids),
        headers=headers,
        params=QUERY.get(route.path),
        json=body if body is not None and route.method not in SAFE else None,
    )


async def seed_org_a(t: Teams) -> None:
    """One of every kind of resource in organisation A, made by its owner."""
    alice, hdr = t.alice, in_tenant(t.a)
    ids = t.ids
    ids["tenant"] = t.a
    ids["label"] = "SPEAKER_1"
    ids["segment_index"] = "0"
    ids["version_number"] = "1"
    ids["alice_user"] = await user_id(alice)
    ids["member_user"] = await user_id(t.vic)
    with (FIXTURES / "speech.wav").open("rb") as fh:
        r = await alice.post(
            "/api/v1/audio", headers=hdr, files={"file": ("speech.wav", fh, "audio/wav")}
        )
    assert r.status_code == 201, r.text
    ids["audio"] = r.json()["id"]
    r = await alice.post(f"/api/v1/audio/{ids['audio']}/transcriptions", headers=hdr, json={})
    assert r.status_code == 202, r.text
    ids["transcription"], ids["job"] = r.json()["transcription_id"], r.json()["job_id"]
    job = await wait_for_job(_As(alice, hdr), ids["job"], timeout=120)
    assert job["status"] == "completed", job
    # An edit, so that versions 1 (the engine's) and 2 exist for the versions routes.
    r = await alice.patch(
        f"/api/v1/transcriptions/{ids['transcription']}/segments/0",
        headers=hdr,
        json={"text": "Edited in organisation A."},
    )
    assert r.status_code == 200, r.text
    r = await alice.post("/api/v1/topics", headers=hdr, json={"name": "Testing"})
    assert r.status_code == 201, r.text
    ids["topic"] = r.json()["id"]
    r = await alice.post("/api/v1/collections", headers=hdr, json={"name": "Shared"})
    assert r.status_code == 201, r.text
    ids["collection"] = r.json()["id"]
    r = await alice.post(
        f"/api/v1/collections/{ids['collection']}/items",
        headers=hdr,
        json={"transcription_id": ids["transcription"]},
    )
    assert r.status_code in (200, 201), r.text
    r = await alice.post(
        f"/api/v1/collections/{ids['collection']}/exports", headers=hdr, json={"formats": ["txt"]}
    )
    assert r.status_code == 202, r.text
    ids["export_job"] = r.json()["job_id"]
    r = await alice.post("/api/v1/uploads", headers=hdr, json={"filename": "x.wav", "size": 1000})
    assert r.status_code == 201, r.text
    ids["upload"] = r.json()["id"]
    r = await alice.post(
        f"/api/v1/tenants/{t.a}/invitations", json={"email": "pending@example.com"}
    )
    assert r.status_code == 201, r.text
    ids["invitation"] = r.json()["id"]
    r = await alice.post("/api/v1/api-keys", json={"name": "alice"})
    assert r.status_code == 201, r.text
    ids["key"] = r.json()["id"]
    r = await alice.post("/api/v1/webhooks", json={"url": "https://example.com/hook"})
    assert r.status_code == 201, r.text
    ids["webhook"] = r.json()["id"]
    r = await alice.post(f"/api/v1/webhooks/{ids['webhook']}/test")
    assert r.status_code in (200, 201, 202), r.text
    r = await alice.get(f"/api/v1/webhooks/{ids['webhook']}/deliveries")
    assert r.status_code == 200 and r.json()["items"], r.text
    ids["delivery"] = r.json()["items"][0]["id"]
    profile = uuid.uuid4()
    v = np.ones(192) / np.sqrt(192)
    async with get_services().sessionmaker() as session:
        session.add(
            VoiceProfile(
                id=profile,
                user_id=uuid.UUID(ids["alice_user"]),
                tenant_id=uuid.UUID(t.a),
                name="Ann",
                centroid=v.tolist(),
            )
        )
        await session.commit()
    ids["profile"] = str(profile)
    # Every job settles first: nothing changes under the checks.
    for jid in (ids["export_job"],):
        await wait_for_job(_As(alice, hdr), jid, timeout=60)


class _As(ApiUser):
    """An ApiUser sending extra headers on every call (wait_for_job takes a user)."""

    def __init__(self, user: ApiUser, extra: dict[str, str]) -> None:
        super().__init__(user.client, user.email, "")
        self.headers = {**user.headers, **extra}


A_RESOURCES = ("audio", "transcription", "job", "collection", "topic", "profile", "upload")


@pytest.mark.slow
async def test_generated_isolation_over_every_route(app_client: httpx.AsyncClient) -> None:
    t = await two_orgs(app_client)
    await seed_org_a(t)
    ids = t.ids
    routes, missing = plan((await app_client.get("/openapi.json")).json())
    assert not missing
    failures: list[str] = []

    def expect(cond: bool, who: str, route: Route, r: httpx.Response) -> None:
        if not cond:
            failures.append(f"{who}: {route.method} {route.path} -> {r.status_code} {r.text[:160]}")

    bob_b = {**t.bob.headers, **in_tenant(t.b)}
    bob_personal = dict(t.bob.headers)
    bob_into_a = {**t.bob.headers, **in_tenant(t.a)}
    alice_personal = dict(t.alice.headers)
    alice_a = {**t.alice.headers, **in_tenant(t.a)}
    vic_a = {**t.vic.headers, **in_tenant(t.a)}

    for route in routes:
        if route.kind == "account":
            continue
        if route.params:
            # Another organisation, and outsiders, get 404 for A's ids.
            for who, headers in (("bob in B", bob_b), ("bob personal", bob_personal)):
                r = await call(app_client, route, ids, headers)
                if route.kind == "admin":
                    expect(r.status_code == 403, who, route, r)
                else:
                    expect(r.status_code == 404, who, route, r)
            r = await call(app_client, route, ids, bob_into_a)
            expected = 403 if route.kind == "admin" else 404
            expect(r.status_code == expected, "bob claiming A", route, r)
            if route.kind == "tenant":
                # A's owner in her personal tenant does not see the organisation's rows.
                r = await call(app_client, route, ids, alice_personal)
                expect(r.status_code == 404, "alice personal", route, r)
        # Viewers read, never write.
        if route.kind in ("tenant", "membership") and (route.method, route.path) not in VIEWER_MAY:
            if route.path == "/api/v1/tenants" and route.method == "POST":
                continue  # creating one's own organisation is not a write in A
            if route.path == "/api/v1/invitations/accept":
                continue  # joining is not a write in A
            if route.path in ENDLESS:
                continue  # a stream: tests/tenancy/test_event_streams.py
            r = await call(app_client, route, ids, vic_a)
            if route.method in SAFE:
                if route.path in MANAGER_READS:
                    expect(r.status_code == 403, "viewer manager-read", route, r)
                else:
                    expect(r.status_code not in (401, 403, 404, 500), "viewer read", route, r)
            elif route.kind == "tenant":
                expect(
                    r.status_code == 403 and r.json()["error"]["code"] == "tenant_read_only",
                    "viewer write",
                    route,
                    r,
                )
            else:
                expect(r.status_code == 403, "viewer manage", route, r)
        # Lists: nothing of A's in another tenant's answer, nor in A's owner's personal one.
        if (
            route.method == "GET"
            and not route.params
            and route.kind != "admin"
            and route.path not in ENDLESS
        ):
            for who, headers in (("bob in B", bob_b), ("alice personal", alice_personal)):
                r = await call(app_client, route, ids, headers)
                leaked = [name for name in A_RESOURCES if ids[name] in r.text]
                expect(not leaked, f"{who} list leaks {leaked}", route, r)

    assert not failures, f"{len(failures)} isolation failures:\n" + "\n".join(failures)
    # Positive controls: the same lists in A show A's resources, to its viewer too.
    for path, name in (
        ("/api/v1/audio", "audio"),
        ("/api/v1/transcriptions", "transcription"),
        ("/api/v1/jobs", "job"),
        ("/api/v1/collections", "collection"),
        ("/api/v1/topics", "topic"),
        ("/api/v1/voice-profiles", "profile"),
    ):
        for headers in (alice_a, vic_a):
            r = await app_client.get(path, headers=headers)
            assert r.status_code == 200 and ids[name] in r.text, (path, r.text[:200])
    # Batch delete answers per id: B's attempt on A's file fails it and deletes nothing.
    r = await app_client.post(
        "/api/v1/audio/batch-delete", headers=bob_b, json={"ids": [ids["audio"]]}
    )
    assert r.status_code == 200 and r.json()["deleted"] == [], r.text
    r = await app_client.get(f"/api/v1/audio/{ids['audio']}", headers=alice_a)
    assert r.status_code == 200


@pytest.mark.slow
async def test_removed_member_loses_access_at_once(app_client: httpx.AsyncClient) -> None:
    t = await two_orgs(app_client)
    await seed_org_a(t)
    ids = t.ids
    r = await t.mia.post("/api/v1/api-keys", json={"name": "ci", "tenant_id": t.a})
    assert r.status_code == 201, r.text
    key = {"X-API-Key": r.json()["key"]}
    mia_jwt_a = {**t.mia.headers, **in_tenant(t.a)}
    # Before: the key acts in A without a header; the session with the header.
    for headers in (key, mia_jwt_a):
        r = await app_client.get(f"/api/v1/audio/{ids['audio']}", headers=headers)
        assert r.status_code == 200, r.text
    mia_id = await user_id(t.mia)
    r = await t.alice.delete(f"/api/v1/tenants/{t.a}/members/{mia_id}")
    assert r.status_code == 204, r.text

    routes, _ = plan((await app_client.get("/openapi.json")).json())
    failures: list[str] = []
    checked = 0
    for route in routes:
        if route.kind not in ("tenant", "membership") or not route.params:
            continue
        checked += 1
        r = await call(app_client, route, ids, key)
        if r.status_code not in (401, 403, 404):
            failures.append(f"key: {route.method} {route.path} -> {r.status_code}")
        r = await call(app_client, route, ids, mia_jwt_a)
        if r.status_code != 404:
            failures.append(f"jwt: {route.method} {route.path} -> {r.status_code} {r.text[:100]}")
    assert checked >= 25
    assert not failures, "\n".join(failures)
    # The key was revoked with the membership, and A is gone from her tenants.
    r = await app_client.get("/api/v1/audio", headers=key)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = await t.mia.get("/api/v1/tenants")
    assert t.a not in r.text
