"""The web UI in a real browser (Chromium through Playwright) against `verbatim serve` with its
worker and the real speech model: the golden path end to end, isolation between users, and
screenshots of every page (light and dark, desktop and phone width) in tests/web/screenshots/.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.web.conftest import Server

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


async def shoot(page: Any, directory: Path, name: str) -> None:
    """Four screenshots of the page: light and dark, desktop and phone width. And a check that
    every control on it has an accessible name (a label, aria-label, or text)."""
    assert await page.evaluate(UNLABELLED) == [], name
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)
        for theme in ("light", "dark"):
            await page.emulate_media(color_scheme=theme)
            await page.screenshot(
                path=str(directory / f"{name}-{theme}-{width}.png"), full_page=False
            )
    await page.set_viewport_size(DESKTOP)
    await page.emulate_media(color_scheme="light")


async def register(page: Any, server: Server, email: str) -> None:
    await page.goto(f"{server.url}/register")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label(re.compile("^Password .at least")).fill(PASSWORD)
    await page.get_by_label("Password again").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(f"{server.url}/library")


async def word_starts(page: Any, turn: Any) -> list[tuple[str, float]]:
    spans = turn.locator(".words span")
    texts = await spans.all_text_contents()
    starts = [float(s) for s in await spans.evaluate_all("els => els.map(e => e.dataset.s)")]
    return list(zip(texts, starts, strict=True))


async def test_golden_path(browser: Any, web_server: Server, screenshots: Path) -> None:
    context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Register (and the sign-in and register pages, for the screenshots).
    await page.goto(f"{web_server.url}/signin")
    await shoot(page, screenshots, "signin")
    await page.goto(f"{web_server.url}/register")
    await shoot(page, screenshots, "register")
    await register(page, web_server, "alice@example.com")

    # Upload two files at once; watch each one's progress to the end.
    await page.locator("#file-input").set_input_files(
        [str(FIXTURES / "dialogue.wav"), str(FIXTURES / "speech2.wav")]
    )
    seen: set[str] = set()
    deadline = time.monotonic() + 240
    rows = page.locator("#uploads li")
    while True:
        states = await page.locator("#uploads li .state").all_text_contents()
        seen.update(states)
        done = await rows.evaluate_all("els => els.map(e => e.dataset.done || '')")
        if len(done) == 2 and all(done):
            break
        assert time.monotonic() < deadline, f"uploads did not finish: {states}"
        await page.wait_for_timeout(100)
    assert done == ["completed", "completed"], await page.locator("#uploads").inner_text()
    assert any(
        s.startswith(("uploading", "uploaded", "pending", "running", "transcrib"))
        and s != "transcribed"
        for s in seen
    ), seen  # progress was shown on the way
    await page.reload()
    assert await page.locator("#library tbody tr").count() == 2
    assert await page.locator("#library .badge.completed").count() == 2
    await shoot(page, screenshots, "library")

    # Open the dialogue recording.
    await page.get_by_role("link", name="dialogue.wav").click()
    await page.wait_for_selector("#transcript .turn")
    recording_page = page.url
    media = page.locator("#media")
    await page.wait_for_function("document.getElementById('media').readyState >= 1")

    # Play: the highlighted word follows the playhead.
    await media.evaluate("m => m.play()")
    samples = []
    for _ in range(6):
        await page.wait_for_timeout(400)
        samples.append(
            await page.evaluate(
                """() => { const m = document.getElementById('media');
                  const now = document.querySelector('.words span.now');
                  const all = [...document.querySelectorAll('.words span')];
                  const i = all.indexOf(now);
                  const at = (k) => (k >= 0 && all[k] ? parseFloat(all[k].dataset.s) : null);
                  return { t: m.currentTime, i, s: at(i), next: at(i + 1) }; }"""
            )
        )
    await media.evaluate("m => m.pause()")
    lit = [s for s in samples if s["i"] >= 0]
    assert len(lit) >= 4, samples
    assert len({s["i"] for s in lit}) >= 3, samples  # it moved along
    for s in lit:  # the word lit is the one being said (sampled after the frame: 0.1 s slack)
        assert s["s"] <= s["t"] + 0.1, s
        assert s["next"] is None or s["next"] >= s["t"] - 0.25, s
    assert [s["i"] for s in lit] == sorted(s["i"] for s in lit)

    # Click a word: it seeks there.
    target = page.locator(".words span").nth(6)
    start = float(await target.get_attribute("data-s"))
    await target.click()
    await page.wait_for_timeout(200)
    now = await media.evaluate("m => m.currentTime")
    await media.evaluate("m => m.pause()")
    assert start - 0.05 <= now <= start + 0.6, (start, now)

    # The keyboard: play/pause, 5 s back and forward, speed, next and previous turn.
    await page.locator("main h1").click()  # focus on the page, not in a field
    time_now = "document.getElementById('media').currentTime"
    await page.keyboard.press("k")
    await page.wait_for_function("!document.getElementById('media').paused")
    await page.keyboard.press("k")
    assert await media.evaluate("m => m.paused")
    await media.evaluate("m => { m.currentTime = 1; }")
    await page.keyboard.press("l")
    await page.wait_for_function(f"Math.abs({time_now} - 6) < 0.01")
    await page.keyboard.press("ArrowLeft")
    await page.wait_for_function(f"Math.abs({time_now} - 1) < 0.01")
    await page.keyboard.press("]")
    assert await media.evaluate("m => m.playbackRate") == 1.25
    assert await page.locator("#speed").text_content() == "1.25\u00d7"
    await page.keyboard.press("[")
    await page.keyboard.press("[")
    assert await media.evaluate("m => m.playbackRate") == 0.75
    turn_starts = [
        float(x)
        for x in await page.locator("#transcript .turn .time").evaluate_all(
            "els => els.map(e => e.dataset.seek)"
        )
    ]
    await media.evaluate("m => { m.currentTime = 0; }")
    await page.keyboard.press("n")
    await page.wait_for_function(f"Math.abs({time_now} - {turn_starts[1]}) < 0.01")
    await page.keyboard.press("n")
    await page.wait_for_function(f"Math.abs({time_now} - {turn_starts[2]}) < 0.01")
    await page.keyboard.press("p")
    await page.wait_for_function(f"Math.abs({time_now} - {turn_starts[1]}) < 0.01")

    # Rename a speaker inline; the turns show the name, and it sticks.
    first_speaker = page.locator("#speakers li").first
    label = await first_speaker.get_attribute("data-label")
    await first_speaker.locator("input[name=display_name]").fill("Alice")
    await first_speaker.get_by_label("Save voice").check()  # and keep her voice
    await first_speaker.get_by_role("button", name="Save").click()
    await page.wait_for_function(
        f"[...document.querySelectorAll('.who[data-label=\"{label}\"]')]"
        ".every(e => e.textContent === 'Alice')"
    )
    await page.reload()
    assert await page.locator(f'.who[data-label="{label}"]').first.text_content() == "Alice"
    await shoot(page, screenshots, "recording")

    # Edit one word in place: the neighbours keep their times.
    turn = page.locator("#transcript .turn").first
    before = await word_starts(page, turn)
    assert len(before) >= 3
    await turn.get_by_role("button", name=re.compile("^Edit turn")).click()
    area = turn.locator("textarea")
    words = [w for w, _ in before]
    words_before = list(words)
    words[1] = "Zebra"
    await area.fill(" ".join(words))
    await shoot(page, screenshots, "editing")
    await turn.get_by_role("button", name="Save").click()
    await page.wait_for_function("!document.querySelector('#transcript .editor')")
    after = await word_starts(page, turn)
    assert [w for w, _ in after] == words
    for i, ((_, t0), (_, t1)) in enumerate(zip(before, after, strict=True)):
        if i != 1:
            assert t0 == t1, (i, before, after)
    assert before[0][1] <= after[1][1] <= before[2][1]
    zebra_at = after[1][1]
    assert await page.locator("#versions li").count() == 1
    await page.get_by_role("button", name="Changes").click()
    await page.locator("#diff ins").wait_for()
    assert await page.locator("#diff ins").text_content() == "Zebra "
    assert (await page.locator("#diff del").text_content()).strip() == words_before[1]

    # Export SRT: the edit is there, on the right time.
    tid = await page.locator("#recording").get_attribute("data-transcription")
    srt = await (
        await context.request.get(f"{web_server.url}/api/v1/transcriptions/{tid}/export?format=srt")
    ).text()
    cue = next(c for c in srt.strip().split("\n\n") if "Zebra" in c)
    begin, end = re.search(r"(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})", cue).groups()

    def seconds(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(rest.replace(",", "."))

    assert seconds(begin) <= zebra_at <= seconds(end), (cue, zebra_at)

    # Search finds the edit (after re-indexing) and jumps to its second.
    deadline = time.monotonic() + 120
    while True:
        jobs = await (
            await context.request.get(f"{web_server.url}/api/v1/jobs?type=search_index&limit=50")
        ).json()
        if jobs["items"] and all(j["status"] == "completed" for j in jobs["items"]):
            r = await context.request.get(f"{web_server.url}/api/v1/search?q=Zebra&mode=text")
            if (await r.json())["items"]:
                break
        assert time.monotonic() < deadline, jobs
        await page.wait_for_timeout(500)
    await page.goto(f"{web_server.url}/search")
    await page.get_by_label("Search your transcripts").fill("Zebra")
    await page.get_by_label("Match").select_option("text")
    await page.get_by_role("button", name="Search").click()
    hit = page.locator(".hit .jump").first
    await hit.wait_for()
    assert "<mark>" in await page.locator(".hit .snippet").first.inner_html()
    await shoot(page, screenshots, "search")
    jump = float(await hit.get_attribute("data-start"))
    assert abs(jump - zebra_at) < 0.05, (jump, zebra_at)
    await hit.click()
    await page.wait_for_url(re.compile(r"/recordings/.*t="))
    await page.wait_for_function(
        f"Math.abs(document.getElementById('media').currentTime - {jump}) < 0.5"
    )
    assert await page.locator(".words span.now").text_content() == "Zebra"
    await media.evaluate("m => m.pause()")

    # Split a turn before its third word, merge it back, change a turn's speaker: every word
    # keeps its time throughout.
    await page.goto(recording_page)
    turns = page.locator("#transcript .turn")
    count = await turns.count()
    starts_js = "els => els.map(e => parseFloat(e.dataset.s))"
    all_times = await page.locator(".words span").evaluate_all(starts_js)
    await turns.first.get_by_role("button", name=re.compile("^Edit turn")).click()
    area = turns.first.locator("textarea")
    caret = len(" ".join((await area.input_value()).split()[:2])) + 1
    await area.evaluate(f"a => a.setSelectionRange({caret}, {caret})")
    async with page.expect_navigation():
        await turns.first.get_by_role("button", name="Split at cursor").click()
    assert await turns.count() == count + 1
    assert len(await word_starts(page, turns.first)) == 2
    assert await page.locator(".words span").evaluate_all(starts_js) == all_times
    await turns.first.get_by_role("button", name=re.compile("^Edit turn")).click()
    async with page.expect_navigation():
        await turns.first.get_by_role("button", name="Merge with next").click()
    assert await turns.count() == count
    assert await page.locator(".words span").evaluate_all(starts_js) == all_times
    first_label = await turns.first.get_attribute("data-speaker")
    second = turns.nth(1)
    assert await second.get_attribute("data-speaker") != first_label
    await second.get_by_role("button", name=re.compile("^Edit turn")).click()
    await second.get_by_label("Speaker").select_option(first_label)
    await second.get_by_role("button", name="Save").click()
    await page.wait_for_function("!document.querySelector('#transcript .editor')")
    assert await second.locator(".who").text_content() == "Alice"
    await page.reload()
    assert await turns.nth(1).get_attribute("data-speaker") == first_label
    assert await page.locator(".words span").evaluate_all(starts_js) == all_times

    # A collection with both recordings, reordered by keyboard and by dragging.
    await page.goto(f"{web_server.url}/collections")
    await page.get_by_label("New collection").fill("Favourites")
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(re.compile(r"/collections/[0-9a-f-]{36}$"))
    collection_url = page.url
    await page.goto(f"{web_server.url}/library")
    await page.get_by_label("Select all on this page").check()
    await page.locator("#bulk-collection").select_option(label="Favourites")
    await page.get_by_role("button", name="Add to collection").click()
    await page.get_by_text("Added 2 to the collection").wait_for()
    await page.goto(f"{web_server.url}/collections")
    await shoot(page, screenshots, "collections")
    await page.goto(collection_url)
    items = page.locator("#items li[data-transcription]")
    order = await items.evaluate_all("els => els.map(e => e.dataset.transcription)")
    assert len(order) == 2
    await items.first.focus()
    await page.keyboard.press("Alt+ArrowDown")
    await page.get_by_text("Moved to position 2").wait_for()
    await page.reload()
    assert await items.evaluate_all("els => els.map(e => e.dataset.transcription)") == order[::-1]
    await items.nth(1).drag_to(items.nth(0), target_position={"x": 10, "y": 2})
    await page.get_by_text("Moved to position 1").wait_for()
    await page.reload()
    assert await items.evaluate_all("els => els.map(e => e.dataset.transcription)") == order
    await shoot(page, screenshots, "collection")
    await page.get_by_role("button", name="Export", exact=True).click()
    link = page.locator("#export-link")
    await link.wait_for(timeout=120_000)
    archive = await (
        await context.request.get(web_server.url + await link.get_attribute("href"))
    ).body()
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert sum(n.endswith(".srt") for n in names) == 2 and "manifest.json" in names, names

    # The remaining pages, for the screenshots.
    await page.goto(f"{web_server.url}/topics")
    await page.get_by_label("Name").fill("Meetings")
    await page.get_by_label(re.compile("^Description")).fill("Meeting notes, agendas, mornings")
    await page.get_by_role("button", name="Create topic").click()
    await page.get_by_text("Meetings").first.wait_for()
    await shoot(page, screenshots, "topics")

    # Review a topic on the recording: assigned (here through the API), then rejected, accepted.
    topic_id = await page.locator("tr[data-topic]").first.get_attribute("data-topic")
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    r = await context.request.put(
        f"{web_server.url}/api/v1/transcriptions/{tid}/topics/{topic_id}",
        data={"status": "accepted"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status == 200, await r.text()
    await page.goto(recording_page)
    topic = page.locator(f'#topics li[data-topic="{topic_id}"]')
    await topic.get_by_role("button", name="Reject").click()
    await topic.locator(".badge.rejected").wait_for()
    await topic.get_by_role("button", name="Accept").click()
    await topic.locator(".badge.accepted").wait_for()

    # The library filters.
    await page.goto(f"{web_server.url}/library?q=speech2")
    assert await page.locator("#library tbody tr").count() == 1
    await page.goto(f"{web_server.url}/library?status=completed&sort=title")
    titles = await page.locator("#library tbody td:nth-child(2)").all_text_contents()
    assert titles == ["dialogue.wav", "speech2.wav"]
    await page.goto(f"{web_server.url}/voices")
    assert await page.locator(".profile-form input[name=name]").input_value() == "Alice"
    await shoot(page, screenshots, "voices")
    await page.locator(".profile-form input[name=name]").fill("Alice Martin")
    await page.get_by_role("button", name="Rename").click()
    await page.get_by_text("Renamed").wait_for()
    await page.reload()
    assert await page.locator(".profile-form input[name=name]").input_value() == "Alice Martin"
    await page.goto(f"{web_server.url}/account")
    await shoot(page, screenshots, "account")

    # Sign out: the library is behind the sign-in page again.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{web_server.url}/signin")
    await page.goto(f"{web_server.url}/library")
    assert page.url.startswith(f"{web_server.url}/signin")
    assert errors == [], errors
    await context.close()


async def test_another_user_sees_nothing(browser: Any, web_server: Server) -> None:
    owner = await browser.new_context(viewport=DESKTOP)
    page = await owner.new_page()
    await register(page, web_server, "owner@example.com")
    await page.locator("#file-input").set_input_files([str(FIXTURES / "speech2.wav")])
    await page.wait_for_function(
        "document.querySelector('#uploads li')?.dataset.done === 'completed'", timeout=240_000
    )
    await page.reload()
    link = page.locator("#library tbody a").first
    recording_url = web_server.url + await link.get_attribute("href")
    await page.goto(recording_url)
    tid = await page.locator("#recording").get_attribute("data-transcription")
    audio = await page.locator("#recording").get_attribute("data-audio")

    other = await browser.new_context(viewport=DESKTOP)
    intruder = await other.new_page()
    await register(intruder, web_server, "intruder@example.com")
    assert await intruder.locator("#library tbody a").count() == 0
    response = await intruder.goto(recording_url)
    assert response.status == 404
    assert "not yours" in await intruder.content()
    for url in (
        f"/api/v1/audio/{audio}",
        f"/api/v1/audio/{audio}/content",
        f"/api/v1/transcriptions/{tid}",
        f"/api/v1/transcriptions/{tid}/export?format=srt",
        f"/api/v1/transcriptions/{tid}/versions",
        f"/recordings/{audio}?transcription={tid}",
    ):
        r = await other.request.get(web_server.url + url)
        assert r.status == 404, url
    search = await other.request.get(f"{web_server.url}/api/v1/search?q=hello&mode=text")
    assert (await search.json())["items"] == []
    await owner.close()
    await other.close()


async def test_a_viewer_gets_pages_without_write_controls_and_no_script_errors(
    browser: Any, web_server: Server
) -> None:
    """A viewer of an organisation (reads only) is offered no control that writes, and the
    pages' scripts, which wire those controls, still run without an error."""
    owner = await browser.new_context(viewport=DESKTOP)
    page = await owner.new_page()
    await register(page, web_server, "org-owner@example.com")
    await page.goto(f"{web_server.url}/organisations")
    await page.get_by_label("Organisation name").fill("Newsroom")
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(re.compile(r"/organisations/[0-9a-f-]{36}$"))
    await page.get_by_label("Email to invite").fill("org-viewer@example.com")
    await page.get_by_label("Role", exact=True).select_option("viewer")
    await page.get_by_role("button", name="Invite").click()
    invite = await page.locator("#invite-link").text_content()
    invite_path = "/" + invite.split("://", 1)[1].split("/", 1)[1]
    # The owner acts in the organisation: one transcribed recording, in a collection.
    await page.goto(f"{web_server.url}/library")
    await page.locator("#tenant-select").select_option(label="Newsroom (owner)")
    await page.get_by_role("button", name="Switch", exact=True).click()
    await page.wait_for_url(f"{web_server.url}/library")
    await page.locator("#file-input").set_input_files([str(FIXTURES / "speech2.wav")])
    await page.wait_for_function(
        "document.querySelector('#uploads li')?.dataset.done === 'completed'", timeout=240_000
    )
    await page.reload()
    recording_url = web_server.url + await page.locator("#library tbody a").first.get_attribute(
        "href"
    )
    await page.goto(f"{web_server.url}/collections")
    await page.get_by_label("New collection").fill("Shelf")
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(re.compile(r"/collections/[0-9a-f-]{36}$"))
    collection_url = page.url
    await page.goto(recording_url)
    await page.get_by_role("button", name="Add", exact=True).click()
    await page.get_by_text("Added to Shelf").wait_for()

    other = await browser.new_context(viewport=DESKTOP)
    viewer = await other.new_page()
    errors: list[str] = []
    viewer.on("pageerror", lambda exc: errors.append(str(exc)))
    viewer.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} ({m.location.get('url')})")
            if m.type == "error" and not str(m.location.get("url", "")).endswith("/favicon.ico")
            else None
        ),
    )
    await register(viewer, web_server, "org-viewer@example.com")
    await viewer.goto(web_server.url + invite_path)
    await viewer.get_by_role("button", name="Join").click()
    await viewer.wait_for_url(f"{web_server.url}/library")
    writes = (
        "#dropzone, #file-input, #url-form, #bulk-delete, #bulk-collection, #bulk-collect, "
        "#transcribe, .speaker-form, [data-assign], #collect-form, #transcript .edit, "
        "#editor-template, #new-collection, [data-delete-collection], [data-move], "
        "[data-remove], #collection-export, #new-topic, [data-delete-topic], .profile-form"
    )
    assert "your role (viewer) cannot change it" in await viewer.locator("#read-only").inner_text()
    assert await viewer.locator(writes).count() == 0
    # Reading stays: choosing recordings enables their export.
    await viewer.get_by_label("Select all on this page").check()
    assert await viewer.locator("#bulk-export").is_enabled()

    await viewer.goto(recording_url)
    await viewer.wait_for_selector("#transcript .turn")
    await viewer.wait_for_function("window.verbatimReady !== undefined")
    assert await viewer.locator(writes).count() == 0
    assert await viewer.evaluate(UNLABELLED) == []
    # The page's script runs: a click on a word plays from there.
    await viewer.wait_for_function("document.getElementById('media').readyState >= 1")
    word = viewer.locator(".words span").nth(2)
    start = float(await word.get_attribute("data-s"))
    await word.click()
    await viewer.wait_for_function(
        f"Math.abs(document.getElementById('media').currentTime - {start}) < 0.6"
    )
    await viewer.locator("#media").evaluate("m => m.pause()")

    for url in ("/collections", collection_url, "/topics", "/voices", "/search"):
        await viewer.goto(url if url.startswith("http") else web_server.url + url)
        assert await viewer.locator("#read-only").count() == 1, url
        assert await viewer.locator(writes).count() == 0, url
    await viewer.goto(collection_url)
    assert await viewer.locator("#items li[data-transcription] a").count() == 1
    assert await viewer.locator("#items li[draggable=true]").count() == 0
    assert errors == [], errors
    await owner.close()
    await other.close()
