"""The usage page over HTTP with the cookie session: figures by day, engine and model for a date
range (rows written into the database as the engines write them), only the caller's own, and a
clear message for a bad range or date."""

from __future__ import annotations

import re

import httpx
import psycopg

from tests.web.test_session import web_register


def _add_usage(
    database_url: str, email: str, rows: list[tuple[str, str, str, float, float]]
) -> None:
    """(day, engine, model, audio seconds, cost) runs of `email`, at noon UTC of `day`."""
    with psycopg.connect(database_url) as db:
        user_id, tenant_id = db.execute(
            'SELECT id, tenant_id FROM "user" WHERE email = %s', (email,)
        ).fetchone()  # type: ignore[misc]
        for day, engine, model, seconds, cost in rows:
            db.execute(
                "INSERT INTO usage_event (id, user_id, tenant_id, engine, model, audio_seconds,"
                " processing_seconds, price_per_minute, cost_estimate, created_at)"
                " VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, %s, 0, %s,"
                " %s::date + time '12:00' at time zone 'UTC')",
                (user_id, tenant_id, engine, model, seconds, seconds / 4, cost, day),
            )


def _cells(html: str) -> list[list[str]]:
    body = html.split('<table id="usage">', 1)[1].split("</tbody>", 1)[0].split("<tbody>", 1)[1]
    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


async def test_figures_by_day_engine_and_model(
    app_client: httpx.AsyncClient, database_url: str
) -> None:
    await web_register(app_client, "counter@example.com")
    _add_usage(
        database_url,
        "counter@example.com",
        [
            ("2026-11-02", "faster-whisper", "base", 120.0, 0.0),
            ("2026-11-02", "openai", "whisper-1", 60.0, 0.006),
            ("2026-11-03", "openai", "gpt-4o-transcribe", 30.0, 0.003),
            ("2026-11-09", "openai", "whisper-1", 600.0, 0.06),  # outside the range below
        ],
    )
    rng = "from=2026-11-01&to=2026-11-03"
    by_day = await app_client.get(f"/usage?{rng}&group_by=day")
    assert by_day.status_code == 200
    assert _cells(by_day.text) == [
        ["2026-11-02", "2", "3.00", "45.0", "0.0060"],
        ["2026-11-03", "1", "0.50", "7.5", "0.0030"],
    ]
    assert "3 runs" in by_day.text and "$0.0090" in by_day.text
    by_engine = await app_client.get(f"/usage?{rng}&group_by=engine")
    assert _cells(by_engine.text) == [
        ["faster-whisper", "1", "2.00", "30.0", "0.0000"],
        ["openai", "2", "1.50", "22.5", "0.0090"],
    ]
    by_model = await app_client.get(f"/usage?{rng}&group_by=model")
    assert [c[:3] for c in _cells(by_model.text)] == [
        ["faster-whisper", "base", "1"],
        ["openai", "gpt-4o-transcribe", "1"],
        ["openai", "whisper-1", "1"],
    ]
    # One day, both ends included.
    one = await app_client.get("/usage?from=2026-11-09&to=2026-11-09")
    assert _cells(one.text) == [["2026-11-09", "1", "10.00", "150.0", "0.0600"]]

    # Another user sees none of it.
    app_client.cookies.clear()
    await web_register(app_client, "stranger@example.com")
    theirs = await app_client.get(f"/usage?{rng}")
    assert theirs.status_code == 200
    assert _cells(theirs.text) == [["No runs in this period."]]


async def test_bad_ranges_get_a_clear_message(app_client: httpx.AsyncClient) -> None:
    await web_register(app_client, "ranges@example.com")
    backwards = await app_client.get("/usage?from=2026-11-05&to=2026-11-01")
    assert backwards.status_code == 422
    assert 'id="usage-error"' in backwards.text and "From must not be after To" in backwards.text
    garbage = await app_client.get("/usage?from=yesterday&to=2026-11-01")
    assert garbage.status_code == 422 and "From: not a date" in garbage.text
    group = await app_client.get("/usage?group_by=planet")
    assert group.status_code == 422 and "planet" in group.text
    assert (await app_client.get("/usage")).status_code == 200  # the last 30 days by default
