"""Cookie sessions and CSRF for the browser (web/session.py), over HTTP in-process: the forms,
the cookie's flags, the CSRF check on the API, sign out and password change ending sessions,
and pages of another user's things answering 404."""

from __future__ import annotations

import re

import httpx

from tests.conftest import FIXTURES, ApiUser, register
from verbatim.web.session import COOKIE

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def web_register(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post(
        "/register", data={"email": email, "password": PASSWORD, "password2": PASSWORD}
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/library"
    page = await client.get("/library")
    assert page.status_code == 200
    return csrf_of(page.text)


async def test_register_sets_an_httponly_lax_cookie_and_signs_in(
    app_client: httpx.AsyncClient,
) -> None:
    r = await app_client.post(
        "/register", data={"email": "web@example.com", "password": PASSWORD, "password2": PASSWORD}
    )

    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    me = await app_client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["email"] == "web@example.com"
    page = await app_client.get("/library")
    assert page.status_code == 200 and "<h1>Library</h1>" in page.text


async def test_the_cookie_is_secure_behind_https(app_client: httpx.AsyncClient) -> None:
    r = await app_client.post(
        "https://verbatim.test/register",
        data={"email": "tls@example.com", "password": PASSWORD, "password2": PASSWORD},
    )

    assert r.status_code == 303
    assert "Secure" in r.headers["set-cookie"]


async def test_bad_registration_and_sign_in_show_the_form_again(
    app_client: httpx.AsyncClient,
) -> None:
    short = await app_client.post(
        "/register", data={"email": "x@example.com", "password": "short", "password2": "short"}
    )
    differ = await app_client.post(
        "/register", data={"email": "x@example.com", "password": PASSWORD, "password2": "other!!!!"}
    )
    assert short.status_code == 422 and "at least 8" in short.text
    assert differ.status_code == 422 and "differ" in differ.text
    assert "set-cookie" not in short.headers and "set-cookie" not in differ.headers

    await web_register(app_client, "known@example.com")
    taken = await app_client.post(
        "/register",
        data={"email": "known@example.com", "password": PASSWORD, "password2": PASSWORD},
    )
    assert taken.status_code == 409 and "already exists" in taken.text

    app_client.cookies.clear()
    wrong = await app_client.post(
        "/signin", data={"email": "known@example.com", "password": "wrong password"}
    )
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    assert "set-cookie" not in wrong.headers
    assert (await app_client.get("/library")).status_code == 303  # to /signin


async def test_state_changes_need_the_csrf_token(app_client: httpx.AsyncClient) -> None:
    csrf = await web_register(app_client, "csrf@example.com")

    refused = await app_client.post("/api/v1/collections", json={"name": "A"})
    forged = await app_client.post(
        "/api/v1/collections", json={"name": "A"}, headers={"X-CSRF-Token": "0" * 64}
    )
    signout = await app_client.post("/signout", data={})

    for r in (refused, forged, signout):
        assert r.status_code == 403, r.text
    assert refused.json()["error"]["code"] == "csrf_failed"
    listed = await app_client.get("/api/v1/collections")
    assert listed.json()["items"] == []  # nothing stored

    ok = await app_client.post(
        "/api/v1/collections", json={"name": "A"}, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 201, ok.text


async def test_sign_out_ends_the_session(app_client: httpx.AsyncClient) -> None:
    csrf = await web_register(app_client, "out@example.com")
    token = app_client.cookies[COOKIE]

    r = await app_client.post("/signout", data={"csrf_token": csrf})

    assert r.status_code == 303 and r.headers["location"] == "/signin"
    app_client.cookies.set(COOKIE, token)  # a copy of the old cookie no longer works
    me = await app_client.get("/api/v1/auth/me")
    assert me.status_code == 401 and me.json()["error"]["code"] == "session_expired"
    assert (await app_client.get("/library")).status_code == 303


async def test_password_change_keeps_this_session_and_ends_the_others(
    app_client: httpx.AsyncClient,
) -> None:
    csrf = await web_register(app_client, "pw@example.com")
    old_cookie = app_client.cookies[COOKIE]

    wrong = await app_client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": "nope nope", "new_password": "new secret 1"},
    )
    assert wrong.status_code == 403 and "current password is wrong" in wrong.text

    r = await app_client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": "new secret 1"},
    )
    assert r.status_code == 200 and "Password changed" in r.text
    assert (await app_client.get("/api/v1/auth/me")).status_code == 200  # the new cookie

    other = httpx.AsyncClient(transport=app_client._transport, base_url="http://verbatim.test")
    other.cookies.set(COOKIE, old_cookie)
    assert (await other.get("/api/v1/auth/me")).status_code == 401
    await other.aclose()
    login = await app_client.post(
        "/api/v1/auth/login", json={"email": "pw@example.com", "password": "new secret 1"}
    )
    assert login.status_code == 200


async def test_api_key_secret_is_shown_once(app_client: httpx.AsyncClient) -> None:
    csrf = await web_register(app_client, "keys@example.com")

    r = await app_client.post("/account/keys", data={"csrf_token": csrf, "name": "laptop"})
    assert r.status_code == 201
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', r.text)
    assert secret
    again = await app_client.get("/account")
    assert secret.group(1) not in again.text and "laptop" in again.text
    used = await app_client.get("/api/v1/auth/me", headers={"X-API-Key": secret.group(1)})
    assert used.status_code == 200

    bad = await app_client.post("/account/keys", data={"csrf_token": csrf, "name": ""})
    assert bad.status_code == 422
    key_id = re.search(r"/account/keys/([0-9a-f-]{36})/revoke", again.text)
    assert key_id
    revoked = await app_client.post(
        f"/account/keys/{key_id.group(1)}/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 303
    assert (
        await app_client.get("/api/v1/auth/me", headers={"X-API-Key": secret.group(1)})
    ).status_code == 401


async def test_another_users_pages_are_404(app_client: httpx.AsyncClient) -> None:
    alice: ApiUser = await register(app_client, "alice-web@example.com")
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    collection = (await alice.post("/api/v1/collections", json={"name": "Mine"})).json()

    await web_register(app_client, "bob-web@example.com")
    for url in (
        f"/recordings/{audio['id']}",
        f"/collections/{collection['id']}",
        f"/recordings/{audio['id']}?transcription=not-a-uuid",
    ):
        r = await app_client.get(url, headers={"Authorization": ""})
        assert r.status_code == 404, url
        assert "not yours" in r.text
    library = await app_client.get("/library")
    assert "speech.wav" not in library.text
    assert (await app_client.get(f"/api/v1/audio/{audio['id']}")).status_code == 404


async def test_pages_need_a_session(app_client: httpx.AsyncClient) -> None:
    for path in ("/library", "/search?q=x", "/collections", "/topics", "/voices", "/account"):
        r = await app_client.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/signin?next=")
    r = await app_client.post(
        "/signin", data={"email": "x@example.com", "password": "x", "next": "//evil.example/"}
    )
    assert r.status_code == 401


async def test_forms_posted_from_another_site_are_refused(app_client: httpx.AsyncClient) -> None:
    evil = {"Origin": "https://evil.example"}
    r = await app_client.post(
        "/register",
        data={"email": "lure@example.com", "password": PASSWORD, "password2": PASSWORD},
        headers=evil,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = await app_client.post(
        "/signin", data={"email": "lure@example.com", "password": PASSWORD}, headers=evil
    )
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    same = await app_client.post(
        "/register",
        data={"email": "lure@example.com", "password": PASSWORD, "password2": PASSWORD},
        headers={"Origin": "http://verbatim.test"},
    )
    assert same.status_code == 303


async def test_sign_in_goes_back_to_the_page_asked_for_and_never_off_site(
    app_client: httpx.AsyncClient,
) -> None:
    await web_register(app_client, "next@example.com")
    app_client.cookies.clear()
    for target, expected in (
        ("/search?q=x", "/search?q=x"),
        ("//evil.example/", "/library"),
        ("https://evil.example/", "/library"),
    ):
        r = await app_client.post(
            "/signin", data={"email": "next@example.com", "password": PASSWORD, "next": target}
        )
        assert r.status_code == 303
        assert r.headers["location"] == expected
        app_client.cookies.clear()
