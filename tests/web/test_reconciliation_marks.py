"""Low-agreement marks on the recording page: words of a completed transcription that carry
`agreement` < `engines` (written by multi-engine reconciliation; here written into the stored
segments directly) are marked, focusable and carry their alternatives; the rest are plain."""

from __future__ import annotations

import json

import httpx
import psycopg

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from tests.web.test_session import PASSWORD, web_register


def mark_words(
    database_url: str, transcription_id: str, marks: dict[int, dict[str, object]]
) -> None:
    """Merge `marks` (by word position in the first segment) into the stored words."""
    with psycopg.connect(database_url) as db:
        seg_id, words = db.execute(
            "SELECT id, words FROM segment WHERE transcription_id = %s ORDER BY index LIMIT 1",
            (transcription_id,),
        ).fetchone()  # type: ignore[misc]
        for i, extra in marks.items():
            words[i].update(extra)
        db.execute("UPDATE segment SET words = %s WHERE id = %s", (json.dumps(words), seg_id))


async def transcribed(client: httpx.AsyncClient, email: str) -> tuple[ApiUser, str, str]:
    await web_register(client, email)
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    me = ApiUser(client, email, r.json()["access_token"])
    r = await me.upload(FIXTURES / "speech.wav")
    audio = r.json()["id"]
    r = await me.post(f"/api/v1/audio/{audio}/transcriptions", json={})
    job = await wait_for_job(me, r.json()["job_id"], timeout=180)
    assert job["status"] == "completed", job
    return me, audio, r.json()["transcription_id"]


async def test_low_agreement_words_are_marked_with_their_alternatives(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    _, audio, tid = await transcribed(app_client, "marks@example.com")
    mark_words(
        database_url,
        tid,
        {
            1: {
                "agreement": 1,
                "engines": 3,
                "alternatives": [
                    {"word": "<b>bold</b>", "engines": ["openai", "assemblyai"]},
                    {"word": "other", "engines": ["google"]},
                ],
            },
            2: {"agreement": 3, "engines": 3, "alternatives": []},  # all agree: no mark
            3: {"agreement": "x", "engines": 2},  # malformed: shown plain, no error
        },
    )
    page = await app_client.get(f"/recordings/{audio}")
    assert page.status_code == 200
    html = page.text
    assert html.count('class="low"') == 1
    low = html.split('class="low"', 1)[1].split("</span>", 1)[0]
    assert 'tabindex="0"' in low
    assert "1 of 3 engines agree; also heard:" in low
    assert "“&lt;b&gt;bold&lt;/b&gt;” (openai, assemblyai)" in low and "<b>" not in low
    assert "“other” (google)" in low

    # Another user: the recording page is a 404.
    app_client.cookies.clear()
    await web_register(app_client, "nosy@example.com")
    assert (await app_client.get(f"/recordings/{audio}")).status_code == 404
