"""The audit log (append-only, rows for the security-relevant actions, the tenant admin's
filtered keyset pages, retention) and platform administration (tenants, users, disabling,
the admin override recorded, quotas as a settings change)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text

from tests.auth.helpers import login
from tests.conftest import ApiUser, register
from tests.tenancy.helpers import in_tenant, two_orgs, user_id
from verbatim.housekeeping.service import purge_audit
from verbatim.services import get_services


async def actions(user: ApiUser, tenant: str, **params: Any) -> list[dict[str, Any]]:
    r = await user.get("/api/v1/audit", headers=in_tenant(tenant), params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def make_admin(client: httpx.AsyncClient, email: str) -> ApiUser:
    user = await register(client, email)
    async with get_services().sessionmaker() as session:
        await session.execute(
            text("UPDATE \"user\" SET role = 'admin' WHERE email = :e"), {"e": email}
        )
        await session.commit()
    return user


async def test_audit_rows_for_security_actions(app_client: httpx.AsyncClient) -> None:
    t = await two_orgs(app_client)
    vic_id = await user_id(t.vic)
    await t.alice.patch(f"/api/v1/tenants/{t.a}/members/{vic_id}", json={"role": "member"})
    r = await t.alice.post("/api/v1/api-keys", json={"name": "k", "tenant_id": t.a})
    await t.alice.delete(f"/api/v1/api-keys/{r.json()['id']}")
    r = await t.alice.post("/api/v1/collections", headers=in_tenant(t.a), json={"name": "C"})
    await t.alice.delete(f"/api/v1/collections/{r.json()['id']}", headers=in_tenant(t.a))
    rows = await actions(t.alice, t.a)
    seen = {row["action"] for row in rows}
    assert {
        "tenant.created",
        "member.invited",
        "member.joined",
        "member.role_changed",
        "api_key.created",
        "api_key.revoked",
        "resource.delete",
    } <= seen, seen
    change = next(row for row in rows if row["action"] == "member.role_changed")
    assert change["details"] == {"from": "viewer", "to": "member"}
    assert change["target_id"] == vic_id and change["actor_user_id"] == await user_id(t.alice)
    assert change["client_address"] and change["request_id"]
    # Filters and keyset pages.
    assert {row["action"] for row in await actions(t.alice, t.a, action="member.")} == {
        "member.invited",
        "member.joined",
        "member.role_changed",
    }
    first = (await t.alice.get("/api/v1/audit", headers=in_tenant(t.a), params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["has_more"]
    second = (
        await t.alice.get(
            "/api/v1/audit",
            headers=in_tenant(t.a),
            params={"limit": 2, "cursor": first["next_cursor"]},
        )
    ).json()
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in second["items"]})
    # Other tenants' rows are not there; members who do not manage get 403; bad input 422.
    assert all(row["tenant_id"] == t.a for row in rows)
    r = await t.vic.get("/api/v1/audit", headers=in_tenant(t.a))
    assert r.status_code == 403 and r.json()["error"]["code"] == "tenant_admin_required"
    r = await t.alice.get("/api/v1/audit", headers=in_tenant(t.a), params={"cursor": "x"})
    assert r.status_code == 422
    r = await t.alice.get("/api/v1/audit", headers=in_tenant(t.a), params={"since": "yesterday"})
    assert r.status_code == 422


async def test_login_rows_and_failed_logins_survive_the_401(app_client: httpx.AsyncClient) -> None:
    await register(app_client, "eve@example.com")
    r = await login(app_client, "eve@example.com", "wrong password")
    assert r.status_code == 401
    async with get_services().sessionmaker() as session:
        rows = (
            (await session.execute(text("SELECT action FROM audit_log ORDER BY created_at")))
            .scalars()
            .all()
        )
    assert rows.count("auth.login") == 1 and rows.count("auth.login_failed") == 1


async def test_audit_log_is_append_only(app_client: httpx.AsyncClient, database_url: str) -> None:
    await register(app_client, "eve@example.com")
    with psycopg.connect(database_url) as conn:
        for sql in (
            "UPDATE audit_log SET action = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
            conn.rollback()
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)
    # Retention is the only delete path: rows older than the setting go, newer stay.
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(
            "INSERT INTO audit_log (id, created_at, action) VALUES "
            "(gen_random_uuid(), now() - interval '40 days', 'old')"
        )
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        conn.commit()
    assert await purge_audit(get_services().sessionmaker, None) == 0
    assert await purge_audit(get_services().sessionmaker, 30) == 1
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT action FROM audit_log").fetchall() == [("auth.login",)]


async def test_platform_admin(app_client: httpx.AsyncClient) -> None:
    t = await two_orgs(app_client)
    admin = await make_admin(app_client, "root@example.com")
    r = await t.alice.post("/api/v1/collections", headers=in_tenant(t.a), json={"name": "Secret"})
    cid = r.json()["id"]
    # Non-admins are refused every admin route.
    for path in ("/api/v1/admin/tenants", "/api/v1/admin/users", "/api/v1/admin/usage"):
        r = await t.alice.get(path)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
    r = await admin.get("/api/v1/admin/tenants", params={"kind": "organisation"})
    assert {x["id"] for x in r.json()["items"]} == {t.a, t.b}
    r = await admin.get("/api/v1/admin/users")
    assert r.json()["total"] == 5
    # Admin override: reads any tenant, read-only, every look recorded.
    r = await admin.get(f"/api/v1/collections/{cid}", headers=in_tenant(t.a))
    assert r.status_code == 200 and r.json()["name"] == "Secret"
    r = await admin.delete(f"/api/v1/collections/{cid}", headers=in_tenant(t.a))
    assert r.status_code == 403 and r.json()["error"]["code"] == "tenant_read_only"
    looks = await actions(admin, t.a, action="admin.access")
    assert len(looks) >= 3  # the read, the refused delete, this listing
    admin_id = await user_id(admin)
    assert all(x["actor_user_id"] == admin_id for x in looks)
    # The tenant's own admins see those looks too.
    assert await actions(t.alice, t.a, action="admin.access")
    # Quotas are a recorded settings change; bad values store nothing.
    r = await admin.patch(f"/api/v1/admin/tenants/{t.a}/quotas", json={"concurrent_jobs": 3})
    assert r.status_code == 200 and r.json()["quota_concurrent_jobs"] == 3
    r = await admin.patch(f"/api/v1/admin/tenants/{t.a}/quotas", json={"concurrent_jobs": -1})
    assert r.status_code == 422
    r = await admin.patch(
        f"/api/v1/admin/tenants/{uuid.uuid4()}/quotas", json={"concurrent_jobs": 1}
    )
    assert r.status_code == 404
    change = await actions(t.alice, t.a, action="settings.changed")
    assert change[0]["details"] == {
        "before": {"concurrent_jobs": None},
        "after": {"concurrent_jobs": 3},
    }


async def test_disabling_a_user_revokes_tokens_and_keys(app_client: httpx.AsyncClient) -> None:
    admin = await make_admin(app_client, "root@example.com")
    eve = await register(app_client, "eve@example.com")
    r = await eve.post("/api/v1/api-keys", json={"name": "k"})
    key = {"X-API-Key": r.json()["key"]}
    eve_id = await user_id(eve)
    r = await admin.post(f"/api/v1/admin/users/{eve_id}/disable")
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert (await eve.get("/api/v1/auth/me")).status_code == 401
    assert (await app_client.get("/api/v1/audio", headers=key)).status_code == 401
    assert (await login(app_client, "eve@example.com")).status_code == 403
    r = await admin.post(f"/api/v1/admin/users/{uuid.uuid4()}/disable")
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    r = await admin.post(f"/api/v1/admin/users/{await user_id(admin)}/disable")
    assert r.status_code == 409


async def test_tenant_jobs_view(app_client: httpx.AsyncClient) -> None:
    from tests.conftest import FIXTURES

    t = await two_orgs(app_client)
    hdr = in_tenant(t.a)
    r = await t.alice.post(
        "/api/v1/audio",
        headers=hdr,
        files={"file": ("s.wav", (FIXTURES / "speech.wav").read_bytes(), "audio/wav")},
    )
    audio = r.json()["id"]
    for who in (t.alice, t.mia):
        r = await who.post(f"/api/v1/audio/{audio}/transcriptions", headers=hdr, json={})
        assert r.status_code == 202, r.text
    mia_id = await user_id(t.mia)
    r = await t.alice.get(f"/api/v1/tenants/{t.a}/jobs", params={"type": "transcription"})
    assert r.status_code == 200 and len(r.json()["items"]) == 2, r.text
    r = await t.alice.get(f"/api/v1/tenants/{t.a}/jobs", params={"member": mia_id})
    assert [j["user_id"] for j in r.json()["items"]] == [mia_id]
    r = await t.alice.get(f"/api/v1/tenants/{t.a}/jobs", params={"status": "bogus"})
    assert r.status_code == 422
    r = await t.vic.get(f"/api/v1/tenants/{t.a}/jobs")
    assert r.status_code == 403 and r.json()["error"]["code"] == "tenant_admin_required"
    r = await t.bob.get(f"/api/v1/tenants/{t.a}/jobs")
    assert r.status_code == 404
    # Members' usage: who stored what.
    r = await t.alice.get(f"/api/v1/tenants/{t.a}/usage")
    shares = {m["user_id"]: m for m in r.json()["members"]}
    size = (FIXTURES / "speech.wav").stat().st_size
    assert shares[await user_id(t.alice)]["storage_bytes"] == size
