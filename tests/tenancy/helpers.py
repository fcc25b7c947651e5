"""Two organisations on one deployment, for the tenancy tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import ApiUser, register


def in_tenant(tenant_id: str) -> dict[str, str]:
    return {"X-Tenant-ID": tenant_id}


async def create_org(user: ApiUser, name: str) -> str:
    r = await user.post("/api/v1/tenants", json={"name": name})
    assert r.status_code == 201, r.text
    tenant_id: str = r.json()["id"]
    return tenant_id


async def invite_and_join(owner: ApiUser, tenant_id: str, member: ApiUser, role: str) -> None:
    r = await owner.post(
        f"/api/v1/tenants/{tenant_id}/invitations", json={"email": member.email, "role": role}
    )
    assert r.status_code == 201, r.text
    r = await member.post("/api/v1/invitations/accept", json={"token": r.json()["token"]})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == role


async def user_id(user: ApiUser) -> str:
    r = await user.get("/api/v1/auth/me")
    assert r.status_code == 200, r.text
    uid: str = r.json()["id"]
    return uid


@dataclass
class Teams:
    client: httpx.AsyncClient
    alice: ApiUser  # owner of A
    vic: ApiUser  # viewer of A
    mia: ApiUser  # member of A (removed by some tests)
    bob: ApiUser  # owner of B
    a: str
    b: str
    ids: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


async def two_orgs(client: httpx.AsyncClient) -> Teams:
    alice = await register(client, "alice@example.com")
    vic = await register(client, "vic@example.com")
    mia = await register(client, "mia@example.com")
    bob = await register(client, "bob@example.com")
    a = await create_org(alice, "Org A")
    b = await create_org(bob, "Org B")
    await invite_and_join(alice, a, vic, "viewer")
    await invite_and_join(alice, a, mia, "member")
    return Teams(client, alice, vic, mia, bob, a, b)
