"""The webhooks, usage, organisation and reconciliation-mark pages in a real browser against
`verbatim serve`: used with the keyboard, every control labelled, screenshots in both themes at
desktop and phone width (tests/web/screenshots/)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import FIXTURES
from tests.web.conftest import Server
from tests.web.test_browser import DESKTOP, register, shoot
from tests.web.test_reconciliation_marks import mark_words
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.slow

# The webhook receiver listens on 127.0.0.2, the one loopback address the server may reach.
SERVER_ENV = {"VERBATIM_WEBHOOK_ALLOW_NETWORKS": "127.0.0.2/32"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def test_webhooks_page_by_keyboard(
    browser: Any, web_server: Server, screenshots: Path, receiver: Receiver
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await register(page, web_server, "hooks@example.com")
    await page.get_by_role("link", name="Webhooks").click()
    await page.wait_for_url(f"{web_server.url}/webhooks")
    await shoot(page, screenshots, "webhooks")

    # A refused address: the message, and the form keeps what was typed.
    await page.get_by_label("URL").fill("http://127.0.0.1:9/private")
    await page.get_by_role("button", name="Add endpoint").click()
    assert "private" in (await page.locator("#hook-error").text_content() or "").lower()
    assert await page.get_by_label("URL").input_value() == "http://127.0.0.1:9/private"

    # Create with the keyboard only: type the URL, tab to the description, Enter submits.
    await page.get_by_label("URL").fill(receiver.url + "/hook")
    await page.keyboard.press("Tab")
    await page.keyboard.type("From the browser")
    await page.keyboard.press("Enter")
    secret = await page.locator("#new-secret").text_content()
    assert secret and secret.startswith("whsec_")
    await shoot(page, screenshots, "webhook-created")
    await page.goto(f"{web_server.url}/webhooks")
    assert await page.locator("#new-secret").count() == 0  # shown once
    assert await page.locator("#hooks li").count() == 1

    await page.get_by_role("link", name=receiver.url + "/hook").click()
    await page.get_by_role("button", name="Send a test message").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url("**?sent=1")
    deadline = time.monotonic() + 30
    while "HTTP 200" not in (await page.locator("#deliveries").text_content() or ""):
        assert time.monotonic() < deadline, "the test message was not delivered"
        await page.wait_for_timeout(300)
        await page.reload()
    assert len(receiver.on("/hook")) == 1
    assert "webhook.test" in (await page.locator("#deliveries").text_content() or "")
    await shoot(page, screenshots, "webhook")

    # Redeliver it, then disable the endpoint and change its events.
    await page.get_by_role("button", name=re.compile("^Send the webhook.test message")).click()
    await page.wait_for_url("**?redelivered=1")
    deadline = time.monotonic() + 30
    while len(receiver.on("/hook")) < 2:
        assert time.monotonic() < deadline
        await page.wait_for_timeout(200)
    await page.get_by_label("Enabled").uncheck()
    await page.get_by_label("search.indexed").uncheck()
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.wait_for_url("**?saved=1")
    assert await page.locator("#hook-state").text_content() == "disabled"
    assert not await page.get_by_label("search.indexed").is_checked()

    page.once("dialog", lambda d: d.accept())
    await page.get_by_role("button", name="Delete endpoint").click()
    await page.wait_for_url(f"{web_server.url}/webhooks")
    assert await page.locator("#hooks").count() == 0
    assert errors == []
    await context.close()


async def test_usage_page(browser: Any, web_server: Server, screenshots: Path) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await register(page, web_server, "usage@example.com")
    await page.get_by_role("link", name="Usage").click()
    await page.wait_for_url(f"{web_server.url}/usage")
    assert "0 runs" in (await page.locator("#usage-total").text_content() or "")
    await shoot(page, screenshots, "usage")
    # A backwards range, chosen with the form: a clear message.
    await page.get_by_label("From", exact=True).fill("2026-11-05")
    await page.get_by_label("To", exact=True).fill("2026-11-01")
    await page.get_by_label("By").select_option("engine")
    await page.get_by_role("button", name="Show").click()
    assert await page.locator("#usage-error").text_content() == "From must not be after To"
    await context.close()


async def test_organisations_switcher_and_invitations(
    browser: Any, web_server: Server, screenshots: Path
) -> None:
    owner_ctx = await browser.new_context(viewport=DESKTOP)
    owner = await owner_ctx.new_page()
    errors: list[str] = []
    owner.on("pageerror", lambda exc: errors.append(str(exc)))
    await register(owner, web_server, "boss@example.com")
    await owner.get_by_role("link", name="Organisations").click()
    await owner.get_by_label("Organisation name").fill("Newsroom")
    await owner.keyboard.press("Enter")
    await owner.wait_for_url(re.compile(r"/organisations/[0-9a-f-]+$"))
    org_url = owner.url
    await owner.get_by_label("Email to invite").fill("reporter@example.com")
    await owner.get_by_label("Role", exact=True).select_option("member")
    await owner.get_by_role("button", name="Invite").click()
    link = await owner.locator("#invite-link").text_content()
    assert link and "/invitations/accept?token=" in link
    await shoot(owner, screenshots, "organisation")

    # The invited person opens the link, signs up, and joins by keyboard.
    guest_ctx = await browser.new_context(viewport=DESKTOP)
    guest = await guest_ctx.new_page()
    await register(guest, web_server, "reporter@example.com")
    await guest.goto(link)
    await shoot(guest, screenshots, "invitation")
    await guest.get_by_role("button", name="Join").focus()
    await guest.keyboard.press("Enter")
    await guest.wait_for_url(f"{web_server.url}/library")
    assert "Newsroom" in (await guest.locator("#acting-in").text_content() or "")

    # The owner switches to the organisation with the switcher; the pages act there.
    await owner.goto(f"{web_server.url}/library")
    assert await owner.locator("#acting-in").count() == 0
    await owner.get_by_label("Act in").select_option(label="Newsroom (owner)")
    await owner.get_by_role("button", name="Switch", exact=True).click()
    await owner.wait_for_url(f"{web_server.url}/library")
    assert "Newsroom" in (await owner.locator("#acting-in").text_content() or "")
    await shoot(owner, screenshots, "library-organisation")
    await owner.get_by_role("link", name="Organisations").click()
    await shoot(owner, screenshots, "organisations")

    # The owner removes the member; the member's pages fall back to the personal library.
    await owner.goto(org_url)
    assert "reporter@example.com" in (await owner.locator("#members").text_content() or "")
    owner.once("dialog", lambda d: d.accept())
    await owner.get_by_role("button", name="Remove reporter@example.com").click()
    await owner.wait_for_url(org_url)
    assert "reporter@example.com" not in (await owner.locator("#members").text_content() or "")
    await guest.reload()
    assert await guest.locator("#stale-tenant").count() == 1
    assert errors == []
    await owner_ctx.close()
    await guest_ctx.close()


async def test_low_agreement_marks_on_hover_and_keyboard_focus(
    browser: Any, web_server: Server, screenshots: Path
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await register(page, web_server, "marks@example.com")
    await page.locator("#file-input").set_input_files([str(FIXTURES / "speech.wav")])
    await page.wait_for_selector("#uploads li[data-done]", timeout=240_000)
    assert await page.locator("#uploads li").get_attribute("data-done") == "completed"
    audio = await page.locator("#uploads li").get_attribute("data-audio")
    with psycopg.connect(web_server.database_url) as db:
        (tid,) = db.execute(
            "SELECT id FROM transcription WHERE audio_file_id = %s", (audio,)
        ).fetchone()  # type: ignore[misc]
    mark_words(
        web_server.database_url,
        str(tid),
        {
            1: {
                "agreement": 1,
                "engines": 2,
                "alternatives": [{"word": "quack", "engines": ["openai"]}],
            }
        },
    )
    await page.goto(f"{web_server.url}/recordings/{audio}")
    low = page.locator(".words span.low")
    assert await low.count() == 1
    # Marked by shape (a dotted underline and a "?" mark), not colour alone.
    style = await low.evaluate(
        "e => [getComputedStyle(e).textDecorationStyle, getComputedStyle(e, '::after').content]"
    )
    assert style == ["dotted", '"?"'], style
    tip = "e => getComputedStyle(e, '::before').content"
    assert await low.evaluate(tip) in ("none", "normal")
    # Hover shows the alternatives.
    await low.hover()
    assert "1 of 2 engines agree" in await low.evaluate(tip)
    await page.mouse.move(0, 0)
    # Keyboard: Tab reaches the word, its alternatives show, Enter seeks there.
    await low.focus()
    assert "also heard: “quack” (openai)" in await low.evaluate(tip)
    await shoot(page, screenshots, "recording-marks")
    await low.focus()
    await page.keyboard.press("Enter")
    start = float(await low.get_attribute("data-s") or 0)
    await page.wait_for_function(
        f"Math.abs(document.getElementById('media').currentTime - {start}) < 0.6"
    )
    await context.close()
