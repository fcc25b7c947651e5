"""Organisations: invitations, roles, leaving, transfer, the last owner; personal tenants stay
personal; the active tenant header; bad input answered with stable codes and nothing stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from sqlalchemy import text

from tests.auth.helpers import count_rows
from tests.conftest import register
from tests.tenancy.helpers import create_org, in_tenant, two_orgs, user_id
from verbatim.models import Invitation, Tenant, TenantMember
from verbatim.services import get_services


async def test_my_tenants_and_the_header(app_client: httpx.AsyncClient) -> None:
    t = await two_orgs(app_client)
    r = await t.vic.get("/api/v1/tenants")
    kinds = [(x["kind"], x["role"]) for x in r.json()]
    assert kinds == [("personal", "owner"), ("organisation", "viewer")], r.text
    # A tenant one does not belong to, a malformed header, an unknown one.
    r = await t.bob.get("/api/v1/audio", headers=in_tenant(t.a))
    assert r.status_code == 404 and r.json()["error"]["code"] == "tenant_not_found"
    r = await t.bob.get("/api/v1/audio", headers={"X-Tenant-ID": "nope"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_tenant_header"
    r = await t.bob.get("/api/v1/audio", headers=in_tenant(str(uuid.uuid4())))
    assert r.status_code == 404 and r.json()["error"]["code"] == "tenant_not_found"


async def test_api_key_bound_to_a_tenant(app_client: httpx.AsyncClient) -> None:
    t = await two_orgs(app_client)
    r = await t.mia.post("/api/v1/api-keys", json={"name": "ci", "tenant_id": t.a})
    assert r.status_code == 201 and r.json()["tenant_id"] == t.a
    key = {"X-API-Key": r.json()["key"]}
    r = await app_client.post("/api/v1/collections", headers=key, json={"name": "From CI"})
    assert r.status_code == 201, r.text
    r = await t.alice.get("/api/v1/collections", headers=in_tenant(t.a))
    assert "From CI" in r.text
    # Not in mia's personal library; the key cannot be pointed at another tenant.
    r = await t.mia.get("/api/v1/collections")
    assert "From CI" not in r.text
    me = (await t.mia.get("/api/v1/auth/me")).json()
    r = await app_client.get("/api/v1/collections", headers={**key, **in_tenant(me["tenant_id"])})
    assert r.status_code == 403 and r.json()["error"]["code"] == "api_key_tenant_mismatch"
    # A key for a tenant one is not in is refused, and none is stored.
    before = await count_rows_keys()
    r = await t.mia.post("/api/v1/api-keys", json={"name": "x", "tenant_id": t.b})
    assert r.status_code == 404 and r.json()["error"]["code"] == "tenant_not_found"
    assert await count_rows_keys() == before


async def count_rows_keys() -> int:
    from verbatim.models import ApiKey

    return await count_rows(ApiKey)


async def test_invitations(app_client: httpx.AsyncClient) -> None:
    alice = await register(app_client, "alice@example.com")
    carol = await register(app_client, "carol@example.com")
    dave = await register(app_client, "dave@example.com")
    org = await create_org(alice, "Org")
    r = await alice.post(
        f"/api/v1/tenants/{org}/invitations", json={"email": "Carol@Example.com", "role": "admin"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "carol@example.com" and body["mailed"] is False
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC) + timedelta(days=6)
    token = body["token"]
    # Another account cannot use it; a forged or garbled token is unknown.
    r = await dave.post("/api/v1/invitations/accept", json={"token": token})
    assert r.status_code == 403 and r.json()["error"]["code"] == "invitation_email_mismatch"
    forged = jwt.encode({"aud": "verbatim-invitation", "inv": body["id"]}, "wrong" * 10, "HS256")
    for bad in (forged, "garbage"):
        r = await carol.post("/api/v1/invitations/accept", json={"token": bad})
        assert r.status_code == 404 and r.json()["error"]["code"] == "invitation_invalid"
    r = await carol.post("/api/v1/invitations/accept", json={"token": token})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    # Used once only.
    r = await carol.post("/api/v1/invitations/accept", json={"token": token})
    assert r.status_code == 404
    # Expired: refused.
    r = await alice.post(f"/api/v1/tenants/{org}/invitations", json={"email": "dave@example.com"})
    async with get_services().sessionmaker() as session:
        await session.execute(
            text("UPDATE invitation SET expires_at = now() - interval '1 second' WHERE id = :i"),
            {"i": r.json()["id"]},
        )
        await session.commit()
    r2 = await dave.post("/api/v1/invitations/accept", json={"token": r.json()["token"]})
    assert r2.status_code == 404 and r2.json()["error"]["code"] == "invitation_invalid"
    # An owner is never invited; bad input stores nothing.
    before = await count_rows(Invitation)
    for payload, status, code in (
        ({"email": "x@example.com", "role": "owner"}, 403, "role_not_allowed"),
        ({"email": "not an email"}, 422, "validation_error"),
        ({"email": "x@example.com", "role": "boss"}, 422, "validation_error"),
        ({"email": "carol@example.com"}, 409, "already_member"),
    ):
        r = await alice.post(f"/api/v1/tenants/{org}/invitations", json=payload)
        assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    assert await count_rows(Invitation) == before
    # Personal tenants are not shared.
    me = (await alice.get("/api/v1/auth/me")).json()
    r = await alice.post(
        f"/api/v1/tenants/{me['tenant_id']}/invitations", json={"email": "dave@example.com"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "personal_tenant"


async def test_roles_leave_transfer_last_owner(app_client: httpx.AsyncClient) -> None:
    t = await two_orgs(app_client)
    alice_id, vic_id, mia_id = [await user_id(u) for u in (t.alice, t.vic, t.mia)]
    # Only managers change roles; an owner is made by transfer only.
    r = await t.mia.patch(f"/api/v1/tenants/{t.a}/members/{vic_id}", json={"role": "member"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "tenant_admin_required"
    r = await t.alice.patch(f"/api/v1/tenants/{t.a}/members/{vic_id}", json={"role": "owner"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed"
    r = await t.alice.patch(f"/api/v1/tenants/{t.a}/members/{mia_id}", json={"role": "admin"})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    # An admin cannot touch the owner; the last owner can neither leave nor be demoted.
    r = await t.mia.patch(f"/api/v1/tenants/{t.a}/members/{alice_id}", json={"role": "viewer"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "owner_required"
    r = await t.mia.delete(f"/api/v1/tenants/{t.a}/members/{alice_id}")
    assert r.status_code == 403
    r = await t.alice.post(f"/api/v1/tenants/{t.a}/leave")
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_owner"
    r = await t.alice.patch(f"/api/v1/tenants/{t.a}/members/{alice_id}", json={"role": "admin"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_owner"
    # Transfer: mia owns, alice stays as admin and may then leave.
    r = await t.mia.post(f"/api/v1/tenants/{t.a}/transfer", json={"user_id": alice_id})
    assert r.status_code == 403 and r.json()["error"]["code"] == "owner_required"
    r = await t.alice.post(f"/api/v1/tenants/{t.a}/transfer", json={"user_id": str(uuid.uuid4())})
    assert r.status_code == 404 and r.json()["error"]["code"] == "member_not_found"
    r = await t.alice.post(f"/api/v1/tenants/{t.a}/transfer", json={"user_id": mia_id})
    assert r.status_code == 204, r.text
    members = {
        m["email"]: m["role"] for m in (await t.vic.get(f"/api/v1/tenants/{t.a}/members")).json()
    }
    assert members == {
        "alice@example.com": "admin",
        "mia@example.com": "owner",
        "vic@example.com": "viewer",
    }
    r = await t.alice.post(f"/api/v1/tenants/{t.a}/leave")
    assert r.status_code == 204
    r = await t.alice.get("/api/v1/audio", headers=in_tenant(t.a))
    assert r.status_code == 404
    # A viewer may leave; a personal tenant cannot be left.
    r = await t.vic.post(f"/api/v1/tenants/{t.a}/leave")
    assert r.status_code == 204
    me = (await t.bob.get("/api/v1/auth/me")).json()
    r = await t.bob.post(f"/api/v1/tenants/{me['tenant_id']}/leave")
    assert r.status_code == 409 and r.json()["error"]["code"] == "personal_tenant"
    assert await count_rows(TenantMember, TenantMember.tenant_id == t.a) == 1


async def test_membership_changes_need_a_password_session(app_client: httpx.AsyncClient) -> None:
    alice = await register(app_client, "alice@example.com")
    org = await create_org(alice, "Org")
    r = await alice.post("/api/v1/api-keys", json={"name": "k", "tenant_id": org})
    key = {"X-API-Key": r.json()["key"]}
    before = await count_rows(Tenant)
    r = await app_client.post("/api/v1/tenants", headers=key, json={"name": "By key"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "password_session_required"
    r = await app_client.post(
        f"/api/v1/tenants/{org}/invitations", headers=key, json={"email": "x@example.com"}
    )
    assert r.status_code == 403
    # Bad names store nothing.
    for name in ("", "x" * 201, "tab\there"):
        r = await alice.post("/api/v1/tenants", json={"name": name})
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert await count_rows(Tenant) == before


async def test_shared_library_dedup_per_tenant(app_client: httpx.AsyncClient) -> None:
    """The same bytes: one row per tenant (personal and organisation apart), shared by members."""
    from tests.conftest import FIXTURES

    t = await two_orgs(app_client)
    r1 = await t.alice.upload(FIXTURES / "speech.wav")
    r2 = await t.alice.post(
        "/api/v1/audio",
        headers=in_tenant(t.a),
        files={"file": ("speech.wav", (FIXTURES / "speech.wav").read_bytes(), "audio/wav")},
    )
    r3 = await t.mia.post(
        "/api/v1/audio",
        headers=in_tenant(t.a),
        files={"file": ("again.wav", (FIXTURES / "speech.wav").read_bytes(), "audio/wav")},
    )
    assert (r1.status_code, r2.status_code, r3.status_code) == (201, 201, 200)
    assert r1.json()["id"] != r2.json()["id"]
    assert r3.json()["id"] == r2.json()["id"] and r3.json()["is_duplicate"] is True
    # Organisation media lives under the tenant's prefix; personal media where it always was.
    async with get_services().sessionmaker() as session:
        keys = dict(
            (await session.execute(text("SELECT id::text, storage_key FROM audio_file"))).all()
        )
    assert keys[r2.json()["id"]].startswith(f"{t.a}/uploads/")
    assert keys[r1.json()["id"]].startswith("uploads/user_")
    r = await t.alice.get(
        f"/api/v1/audio/{r2.json()['id']}/content", headers=in_tenant(t.vic and t.a)
    )
    assert r.status_code == 200


async def test_storage_check_covers_organisation_prefixes(app_client: httpx.AsyncClient) -> None:
    """`verbatim storage check` lists `{tenant_id}/uploads/` too: an organisation's live media
    is not an orphan, a stray object under its prefix is."""
    import asyncio

    from tests.conftest import FIXTURES
    from verbatim.housekeeping.service import check_storage

    alice = await register(app_client, "alice@example.com")
    org = await create_org(alice, "Org")
    r = await alice.post(
        "/api/v1/audio",
        headers=in_tenant(org),
        files={"file": ("s.wav", (FIXTURES / "speech.wav").read_bytes(), "audio/wav")},
    )
    assert r.status_code == 201
    services = get_services()
    stray = f"{org}/uploads/2026/01/{uuid.uuid4().hex}_stray.wav"
    await asyncio.to_thread(services.storage.put_bytes, stray, b"nobody's", "audio/wav")
    later = datetime.now(UTC) + timedelta(days=1)
    report = await check_storage(services.sessionmaker, services.storage, now=later)
    assert [o.key for o in report.orphan_objects] == [stray]
    assert report.missing_media == [] and report.objects_checked == 2
