"""Live job progress in the browser: the library and recording pages follow the server-sent
event streams (`/api/v1/events`, `/api/v1/jobs/{id}/events`) and send no poll requests; when the
stream cannot be opened they fall back to polling the jobs API and still finish."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.web.conftest import Server
from tests.web.test_browser import DESKTOP, register

pytestmark = pytest.mark.slow


def _is_poll(url: str) -> bool:
    path = url.split("?", 1)[0]
    return ("/api/v1/jobs/" in path and not path.endswith("/events")) or (
        "/api/v1/transcriptions/" in path and "/export" not in path
    )


async def _upload_and_wait(page: Any, name: str) -> list[str]:
    await page.locator("#file-input").set_input_files([str(FIXTURES / name)])
    seen: list[str] = []
    deadline = time.monotonic() + 240
    row = page.locator("#uploads li").last
    while True:
        state = await row.locator(".state").text_content()
        if state and (not seen or seen[-1] != state):
            seen.append(state)
        if await row.get_attribute("data-done"):
            return seen
        assert time.monotonic() < deadline, seen
        await page.wait_for_timeout(50)


async def test_progress_arrives_by_events_without_polling(browser: Any, web_server: Server) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await register(page, web_server, "live@example.com")
    await page.wait_for_function("document.documentElement.dataset.liveMode === 'events'")

    seen = await _upload_and_wait(page, "speech2.wav")
    assert await page.locator("#uploads li .state").last.text_content() == "transcribed", seen
    # Progress came through: a running state with a percentage, then the end.
    assert any(s.endswith("%") for s in seen), seen
    assert [u for u in requests if _is_poll(u)] == [], "polled although the stream was open"
    assert any(u.endswith("/api/v1/events") for u in requests)

    # The recording page of a job that is still running follows that job's own stream.
    audio_id = await page.locator("#uploads li").last.get_attribute("data-audio")
    job = await page.evaluate(
        """async (id) => {
          const token = document.querySelector('meta[name=csrf-token]').content;
          const r = await fetch(`/api/v1/audio/${id}/transcriptions`, {method: 'POST',
            headers: {'X-CSRF-Token': token, 'Content-Type': 'application/json'}, body: '{}'});
          return (await r.json()).job_id; }""",
        audio_id,
    )
    requests.clear()
    await page.goto(f"{web_server.url}/recordings/{audio_id}")
    assert await page.locator("#recording").get_attribute("data-job") == job
    await page.get_by_label("Progress").wait_for()
    # It reloads itself into the finished transcript when the job's final event arrives.
    await page.wait_for_selector("#transcript .turn", timeout=240_000)
    assert any(u.endswith(f"/api/v1/jobs/{job}/events") for u in requests), requests
    assert [u for u in requests if _is_poll(u)] == [], "polled although the stream was open"
    assert errors == []
    await context.close()


async def test_polling_is_the_fallback_when_the_stream_fails(
    browser: Any, web_server: Server
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    # The stream endpoints answer 503 (as a proxy without streaming might): no EventSource.
    await page.route("**/api/v1/events", lambda route: route.fulfill(status=503, body="no"))
    await page.route("**/api/v1/jobs/*/events", lambda route: route.fulfill(status=503, body=""))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await register(page, web_server, "fallback@example.com")
    await page.wait_for_function("document.documentElement.dataset.liveMode === 'polling'")
    seen = await _upload_and_wait(page, "speech2.wav")
    assert await page.locator("#uploads li .state").last.text_content() == "transcribed", seen
    assert [u for u in requests if _is_poll(u)], "the fallback did not poll"
    await context.close()
