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


async def test_a_reconciled_recording_shows_the_engines_agreement_and_where_to_check(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    """The metrics the reconcile job stores (GET .../metrics) on the page: a row per engine and
    the low-agreement spans as buttons that play from their start; text from the engines is
    escaped. A single-engine recording has no such panel."""
    _, audio, tid = await transcribed(app_client, "panel@example.com")
    page = await app_client.get(f"/recordings/{audio}")
    assert page.status_code == 200 and 'id="agreement"' not in page.text
    metrics = {
        "engines": [
            {"engine": "faster-whisper:tiny.en", "words": 14, "wer_vs_consensus": 0.0714,
             "mean_confidence": 0.91, "processing_time_s": 1.5, "cost": 0.0},
            {"engine": "assemblyai:universal", "words": 14, "wer_vs_consensus": 0.1428,
             "mean_confidence": 0.88, "processing_time_s": 3.2, "cost": 0.00025},
        ],
        "mean_agreement": 0.9286,
        "word_count": 14,
        "low_agreement_spans": [
            {"start": 65.2, "end": 66.0, "consensus": "<script>x</script>", "engines": {}},
        ],
        "low_agreement_seconds": 0.8,
        "failed_engines": [{"engine": "google:latest_long", "status": "failed",
                            "error_code": "engine_auth_failed"}],
    }  # fmt: skip
    with psycopg.connect(database_url) as db:
        db.execute(
            "UPDATE transcription SET engine = 'reconcile', metrics = %s WHERE id = %s",
            (json.dumps(metrics), tid),
        )
    html = (await app_client.get(f"/recordings/{audio}")).text
    panel = html.split('id="agreement"', 1)[1].split("</section>", 1)[0]
    assert "92.9 % mean agreement over 14 words; 1 place to check (0.8 s)" in panel
    assert '<th scope="row">faster-whisper:tiny.en</th><td>14</td><td>7.1 %</td>' in panel
    assert '<th scope="row">assemblyai:universal</th>' in panel and "$0.0003" in panel
    assert "google:latest_long (engine_auth_failed)" in panel
    assert 'data-seek="65.200"' in panel and ">1:05</button>" in panel
    assert "&lt;script&gt;x&lt;/script&gt;" in panel and "<script>x" not in panel
