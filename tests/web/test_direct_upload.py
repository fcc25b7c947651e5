"""Large files from the library page go straight to storage: presigned, in parts sent in
parallel, retried after a network error, and resumed (only the missing parts) when the same file
is chosen again after a failure. And a link pasted in the library's URL box is fetched. Against
`verbatim serve` with the local storage backend."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import threading
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import FIXTURES
from tests.web.conftest import Server
from tests.web.test_browser import DESKTOP, register

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
SERVER_ENV = {
    "VERBATIM_WEB_DIRECT_UPLOAD_BYTES": str(1 * MIB),
    "VERBATIM_MULTIPART_THRESHOLD_BYTES": str(5 * MIB),
    "VERBATIM_MULTIPART_PART_SIZE_BYTES": str(5 * MIB),
    # The link test's media server is on loopback, which downloads refuse unless allowed.
    "VERBATIM_DOWNLOAD_ALLOW_NETWORKS": "127.0.0.1/32",
}


def noise_wav(path: Path, seed: int, seconds: float = 350) -> Path:
    """About 11 MB of 16 kHz mono PCM: three 5 MiB parts."""
    samples = np.random.default_rng(seed).normal(0, 300, int(16000 * seconds)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return path


async def uploaded_audio(page: Any, server: Server) -> dict[str, Any]:
    await page.wait_for_function(
        "document.querySelector('#uploads li:last-child')?.dataset.audio", timeout=120_000
    )
    audio_id = await page.locator("#uploads li").last.get_attribute("data-audio")
    r = await page.context.request.get(f"{server.url}/api/v1/audio/{audio_id}")
    assert r.status == 200
    audio: dict[str, Any] = await r.json()
    return audio


def part_number(url: str) -> int:
    """The part a signed local-storage URL is for (its token is base64url JSON, then a
    signature)."""
    token = url.split("/storage/local/", 1)[1].split("?", 1)[0].split(".", 1)[0]
    claims = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return int(claims["part"])


async def test_a_large_file_goes_direct_in_parts_and_survives_errors(
    browser: Any, web_server: Server, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await register(page, web_server, "big-files@example.com")
    await page.get_by_label("Detect speakers (who said what)").uncheck()
    puts: list[str] = []
    failed_once: set[str] = set()

    async def flaky(route: Any) -> None:
        request = route.request
        if request.method != "PUT":
            await route.continue_()
            return
        puts.append(request.url)
        if len(puts) == 2 and request.url not in failed_once:  # one part's connection drops
            failed_once.add(request.url)
            await route.abort("connectionreset")
            return
        await route.continue_()

    await page.route("**/api/v1/storage/local/**", flaky)
    first = noise_wav(tmp_path / "first.wav", 1)
    await page.locator("#file-input").set_input_files(str(first))
    audio = await uploaded_audio(page, web_server)

    assert audio["source_type"] == "presigned"
    assert audio["size_bytes"] == first.stat().st_size
    assert len(set(puts)) == 3 and len(puts) == 4  # three parts, one sent twice

    # A part refused for good: the upload fails, and choosing the file again sends only it.
    puts.clear()
    # Parts the store acknowledged during the failing attempt: a resume sends the others only
    # (the refused part, and any part still in flight when the upload stopped).
    acknowledged: set[int] = set()

    def acknowledge(response: Any) -> None:
        if response.request.method == "PUT" and "/storage/local/" in response.url and response.ok:
            acknowledged.add(part_number(response.url))

    page.on("response", acknowledge)

    async def refuse_third(route: Any) -> None:
        request = route.request
        if request.method == "PUT":
            puts.append(request.url)
            if len(puts) == 3:
                await route.fulfill(status=403, body="refused")
                return
        await route.continue_()

    await page.unroute("**/api/v1/storage/local/**")
    await page.route("**/api/v1/storage/local/**", refuse_third)
    second = noise_wav(tmp_path / "second.wav", 2)
    await page.locator("#file-input").set_input_files(str(second))
    await page.wait_for_function(
        "document.querySelector('#uploads li:last-child')?.dataset.done === 'failed'"
    )
    assert "storage answered 403" in await page.locator("#uploads li .state").last.inner_text()
    assert len(puts) == 3

    await page.unroute("**/api/v1/storage/local/**")
    page.remove_listener("response", acknowledge)
    attempted = {part_number(url) for url in puts}
    resumed: list[str] = []

    async def count(route: Any) -> None:
        if route.request.method == "PUT":
            resumed.append(route.request.url)
        await route.continue_()

    await page.route("**/api/v1/storage/local/**", count)
    await page.locator("#file-input").set_input_files(str(second))
    audio = await uploaded_audio(page, web_server)

    assert audio["size_bytes"] == second.stat().st_size
    assert audio["original_filename"] == "second.wav"
    # Only parts not acknowledged in the failing attempt, each once: at least the refused one,
    # and no part the store had already acknowledged (one in flight when it stopped may repeat).
    resumed_parts = [part_number(url) for url in resumed]
    assert resumed_parts and len(set(resumed_parts)) == len(resumed_parts), resumed_parts
    assert set(resumed_parts) <= attempted and not set(resumed_parts) & acknowledged, (
        resumed_parts,
        acknowledged,
    )
    await context.close()


async def test_a_link_in_the_url_box_is_fetched_into_the_library(
    browser: Any, web_server: Server
) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES))
    media = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=media.serve_forever, daemon=True).start()
    try:
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await register(page, web_server, "links@example.com")
        url = f"http://127.0.0.1:{media.server_address[1]}/speech2.wav"
        await page.get_by_label("Link to media").fill(url)
        await page.get_by_role("button", name="Fetch link").click()
        state = page.locator("#uploads li .state").last
        await page.wait_for_function(
            "/^(downloaded|failed|cancelled)/.test("
            "document.querySelector('#uploads li:last-child .state')?.textContent || '')",
            timeout=120_000,
        )
        assert (await state.text_content()).startswith("downloaded"), await state.text_content()
        await page.reload()
        assert await page.locator("#library tbody a", has_text="speech2").count() == 1
        await context.close()
    finally:
        media.shutdown()
