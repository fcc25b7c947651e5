"""The web UI acts in the personal tenant: an organisation's recordings never show in a
person's own library pages, even the ones they uploaded there (decision 0019)."""

from __future__ import annotations

import httpx

from tests.conftest import FIXTURES, ApiUser
from tests.tenancy.helpers import create_org, in_tenant
from tests.web.test_session import PASSWORD, web_register


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
