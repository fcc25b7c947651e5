"""API key management needs a password session; the list is bounded."""

from __future__ import annotations

import uuid

from tests.auth.helpers import count_rows
from tests.conftest import ApiUser


async def test_an_api_key_cannot_manage_api_keys(alice: ApiUser) -> None:
    from verbatim.models import ApiKey

    created = (await alice.post("/api/v1/api-keys", json={"name": "leaky"})).json()
    secret = created["key"]
    client = alice.client
    for headers in ({"X-API-Key": secret}, {"Authorization": f"Bearer {secret}"}):
        r = await client.post("/api/v1/api-keys", json={"name": "child"}, headers=headers)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "password_session_required"
        r = await client.get("/api/v1/api-keys", headers=headers)
        assert r.status_code == 403
        r = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=headers)
        assert r.status_code == 403
    assert await count_rows(ApiKey) == 1
    assert await count_rows(ApiKey, ApiKey.revoked_at.is_not(None)) == 0
    # The key still works for everything else.
    assert (await client.get("/api/v1/auth/me", headers={"X-API-Key": secret})).status_code == 200


async def test_api_key_list_is_paged(alice: ApiUser, bob: ApiUser) -> None:
    ids = []
    for i in range(5):
        ids.append((await alice.post("/api/v1/api-keys", json={"name": f"k{i}"})).json()["id"])
    await bob.post("/api/v1/api-keys", json={"name": "bobs"})
    page = (await alice.get("/api/v1/api-keys", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [k["id"] for k in page["items"]] == list(reversed(ids))[1:3]  # newest first
    assert (await alice.get("/api/v1/api-keys")).json()["limit"] == 50
    for params in ({"limit": 501}, {"limit": 0}, {"offset": -1}, {"offset": 2**63}):
        r = await alice.get("/api/v1/api-keys", params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]["code"] == "validation_error"
    assert (await bob.get("/api/v1/api-keys")).json()["total"] == 1


async def test_revoke_unknown_or_foreign_key_is_404(alice: ApiUser, bob: ApiUser) -> None:
    from verbatim.models import ApiKey

    created = (await alice.post("/api/v1/api-keys", json={"name": "mine"})).json()
    for key_id in (created["id"], str(uuid.uuid4())):
        r = await bob.delete(f"/api/v1/api-keys/{key_id}")
        assert r.status_code == 404
    assert (await bob.delete("/api/v1/api-keys/not-a-uuid")).status_code == 422
    assert await count_rows(ApiKey, ApiKey.revoked_at.is_not(None)) == 0


async def test_api_key_name_with_control_characters_is_refused(alice: ApiUser) -> None:
    from verbatim.models import ApiKey

    for name in ("nul\x00byte", "new\nline", "\x7f"):
        r = await alice.post("/api/v1/api-keys", json={"name": name})
        assert r.status_code == 422, name
        assert r.json()["error"]["code"] == "validation_error"
    assert await count_rows(ApiKey) == 0
    r = await alice.post("/api/v1/api-keys", json={"name": "Büro laptop ✓"})
    assert r.status_code == 201
