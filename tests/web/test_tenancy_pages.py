"""The web UI acts in the personal tenant: an organisation's recordings never show in a
person's own library pages, even the ones they uploaded there (decision 0019)."""

from __future__ import annotations

import re
import uuid

import httpx
import psycopg

from tests.conftest import FIXTURES, ApiUser
from tests.tenancy.helpers import create_org, in_tenant
from tests.web.test_session import PASSWORD, web_register
from verbatim.web.session import TENANT_COOKIE


async def test_organisation_recordings_stay_out_of_the_personal_pages(
    app_client: httpx.AsyncClient,
) -> None:
    await web_register(app_client, "both@example.com")
    r = await app_client.post(
        "/api/v1/auth/login", json={"email": "both@example.com", "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    me = ApiUser(app_client, "both@example.com", r.json()["access_token"])
    org = await create_org(me, "Org")
    with (FIXTURES / "speech.wav").open("rb") as fh:
        r = await me.post(
            "/api/v1/audio",
            headers=in_tenant(org),
            files={"file": ("org-only-recording.wav", fh, "audio/wav")},
        )
    assert r.status_code == 201, r.text
    org_audio = r.json()["id"]
    r = await me.upload(FIXTURES / "speech.mp3", filename="my-own-recording.mp3")
    assert r.status_code == 201, r.text
    own_audio = r.json()["id"]

    page = await app_client.get("/library")  # the cookie session
    assert page.status_code == 200
    assert "my-own-recording" in page.text and "org-only-recording" not in page.text
    assert (await app_client.get(f"/recordings/{own_audio}")).status_code == 200
    assert (await app_client.get(f"/recordings/{org_audio}")).status_code == 404


# --- the switcher, members and invitations ----------------------------------------------------


def _other_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second browser: the same app, its own cookies."""
    return httpx.AsyncClient(transport=client._transport, base_url=client.base_url, timeout=60)


def _count(database_url: str, sql: str, *args: object) -> int:
    with psycopg.connect(database_url) as db:
        row = db.execute(sql, args).fetchone()
        return int(row[0]) if row else -1


async def _web_org(client: httpx.AsyncClient, csrf: str, name: str) -> str:
    r = await client.post("/organisations", data={"csrf_token": csrf, "name": name})
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


async def _switch(client: httpx.AsyncClient, csrf: str, tenant_id: str) -> httpx.Response:
    return await client.post(
        "/tenant", data={"csrf_token": csrf, "tenant_id": tenant_id, "next": "/library"}
    )


async def test_the_switcher_makes_the_pages_and_the_api_act_in_the_organisation(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    csrf = await web_register(app_client, "owner@example.com")
    org = await _web_org(app_client, csrf, "Newsroom")
    with (FIXTURES / "speech.wav").open("rb") as fh:
        r = await app_client.post(
            "/api/v1/audio",
            headers={"X-CSRF-Token": csrf},
            files={"file": ("personal-one.wav", fh, "audio/wav")},
        )
    assert r.status_code == 201

    r = await _switch(app_client, csrf, org)
    assert r.status_code == 303 and r.headers["location"] == "/library"
    assert f"{TENANT_COOKIE}={org}" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"]
    # The API, called by the page's scripts with the cookie, now writes into the organisation.
    with (FIXTURES / "speech.wav").open("rb") as fh:
        r = await app_client.post(
            "/api/v1/audio",
            headers={"X-CSRF-Token": csrf},
            files={"file": ("org-one.wav", fh, "audio/wav")},
        )
    assert r.status_code == 201
    org_audio = r.json()["id"]
    assert _count(database_url, "SELECT count(*) FROM audio_file WHERE tenant_id = %s", org) == 1
    page = await app_client.get("/library")
    assert "org-one.wav" in page.text and "personal-one.wav" not in page.text
    assert "Acting in <strong>Newsroom</strong> as owner" in page.text
    assert (await app_client.get(f"/recordings/{org_audio}")).status_code == 200

    # Back to the personal library.
    me = (await app_client.get("/api/v1/auth/me")).json()
    r = await _switch(app_client, csrf, me["tenant_id"])
    assert r.status_code == 303
    page = await app_client.get("/library")
    assert "personal-one.wav" in page.text and "org-one.wav" not in page.text
    assert (await app_client.get(f"/recordings/{org_audio}")).status_code == 404


async def test_switching_to_a_tenant_you_do_not_belong_to_is_a_404(
    app_client: httpx.AsyncClient,
) -> None:
    csrf = await web_register(app_client, "alone@example.com")
    async with _other_client(app_client) as other:
        other_csrf = await web_register(other, "elsewhere@example.com")
        foreign = await _web_org(other, other_csrf, "Not yours")
    for value in (foreign, "not-a-uuid", str(uuid.uuid4())):
        r = await _switch(app_client, csrf, value)
        assert r.status_code == 404, value
        assert TENANT_COOKIE not in r.headers.get("set-cookie", "")
    # A forged cookie is checked too: the API refuses it, the pages show the personal library.
    app_client.cookies.set(TENANT_COOKIE, foreign)
    r = await app_client.get("/api/v1/audio")
    assert r.status_code == 404 and r.json()["error"]["code"] == "tenant_not_found"
    page = await app_client.get("/library")
    assert page.status_code == 200 and 'id="stale-tenant"' in page.text
    assert "Not yours" not in page.text


async def test_members_and_invitations(app_client: httpx.AsyncClient, database_url: str) -> None:
    csrf = await web_register(app_client, "boss@example.com")
    org = await _web_org(app_client, csrf, "Studio")
    base = f"/organisations/{org}"

    # Bad invitations: a clear message, nothing stored.
    for data, status, text in (
        ({"email": "not-an-email", "role": "member"}, 422, "email"),
        ({"email": "x@example.com", "role": "emperor"}, 422, "role"),
        ({"email": "x@example.com", "role": "owner"}, 403, "transferring ownership"),
        ({"email": "boss@example.com", "role": "member"}, 409, "already a member"),
    ):
        r = await app_client.post(f"{base}/invitations", data={"csrf_token": csrf, **data})
        assert r.status_code == status, (data, r.status_code)
        assert 'id="org-error"' in r.text and text in r.text, data
    assert _count(database_url, "SELECT count(*) FROM invitation") == 0

    r = await app_client.post(
        f"{base}/invitations",
        data={"csrf_token": csrf, "email": "new@example.com", "role": "viewer"},
    )
    assert r.status_code == 201
    link = re.search(r'<code id="invite-link">([^<]+)</code>', r.text).group(1)  # type: ignore[union-attr]
    path = link.split("://", 1)[1].split("/", 1)[1]
    assert path.startswith("invitations/accept?token=")

    async with _other_client(app_client) as new, _other_client(app_client) as wrong:
        # Another account cannot use the link; nothing changes.
        wrong_csrf = await web_register(wrong, "wrong@example.com")
        token = path.split("token=", 1)[1]
        r = await wrong.post("/invitations/accept", data={"csrf_token": wrong_csrf, "token": token})
        assert r.status_code == 403 and "another email address" in r.text
        r = await wrong.post("/invitations/accept", data={"csrf_token": wrong_csrf, "token": "x"})
        assert r.status_code == 404 and 'id="accept-error"' in r.text
        # Nor see the organisation or touch its members.
        me = (await app_client.get("/api/v1/auth/me")).json()
        for method, url, data in (
            ("get", base, None),
            ("post", f"{base}/members/{me['id']}/role", {"role": "viewer"}),
            ("post", f"{base}/members/{me['id']}/remove", {}),
            ("post", f"{base}/invitations", {"email": "z@example.com", "role": "member"}),
        ):
            kw = {} if data is None else {"data": {"csrf_token": wrong_csrf, **data}}
            r = await getattr(wrong, method)(url, **kw)
            assert r.status_code == 404, (method, url)

        # The invited person follows the link (signing in first) and joins.
        r = await new.get("/" + path)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")
        new_csrf = await web_register(new, "new@example.com")
        page = await new.get("/" + path)
        assert page.status_code == 200 and "Join" in page.text
        r = await new.post("/invitations/accept", data={"csrf_token": new_csrf, "token": token})
        assert r.status_code == 303 and f"{TENANT_COOKIE}={org}" in r.headers["set-cookie"]
        page = await new.get("/library")
        assert "Acting in <strong>Studio</strong> as viewer" in page.text
        # A viewer sees the members but manages nothing.
        page = await new.get(base)
        assert page.status_code == 200 and "boss@example.com" in page.text
        assert "Invite" not in page.text
        new_id = (await new.get("/api/v1/auth/me")).json()["id"]
        r = await new.post(f"{base}/members/{me['id']}/remove", data={"csrf_token": new_csrf})
        assert r.status_code == 403 and 'id="org-error"' in r.text

        # The owner changes their role, then removes them; their pages fall back at once.
        r = await app_client.post(
            f"{base}/members/{new_id}/role", data={"csrf_token": csrf, "role": "member"}
        )
        assert r.status_code == 303
        role = "SELECT role::text FROM tenant_member WHERE tenant_id = %s AND user_id = %s"
        with psycopg.connect(database_url) as db:
            assert db.execute(role, (org, new_id)).fetchone() == ("member",)
        r = await app_client.post(
            f"{base}/members/{new_id}/role", data={"csrf_token": csrf, "role": "emperor"}
        )
        assert r.status_code == 422
        r = await app_client.post(f"{base}/members/{new_id}/remove", data={"csrf_token": csrf})
        assert r.status_code == 303
        page = await new.get("/library")
        assert 'id="stale-tenant"' in page.text
        assert (await new.get(base)).status_code == 404

    # Revoke an open invitation.
    r = await app_client.post(
        f"{base}/invitations", data={"csrf_token": csrf, "email": "later@example.com"}
    )
    assert r.status_code == 201
    inv = re.search(r'data-invitation="([0-9a-f-]+)">later@', r.text).group(1)  # type: ignore[union-attr]
    r = await app_client.post(f"{base}/invitations/{inv}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 303
    revoked = "SELECT count(*) FROM invitation WHERE id = %s AND revoked_at IS NOT NULL"
    assert _count(database_url, revoked, inv) == 1
    # An empty organisation name: a message, no organisation.
    r = await app_client.post("/organisations", data={"csrf_token": csrf, "name": " "})
    assert r.status_code == 422 and 'id="org-error"' in r.text
    assert _count(database_url, "SELECT count(*) FROM tenant WHERE kind = 'organisation'") == 1
