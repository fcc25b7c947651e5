"""The web UI's figures (issue 14), in Chromium through Playwright against `verbatim serve`:

- the recording page of a 30,000-word transcript (3 hours): time until it is interactive
  (words indexed, handlers on), against the same words as one plain paragraph with no markup
  and no script, loaded in the same browser (target: under 2 s);
- playback: frame intervals and the highlight's work per frame, and DOM mutations (target: none);
- the library page of a 10,000-recording library: bytes of HTML, stylesheet and scripts, against
  one page (50) of the API's JSON list of the same library (target: under 200 KB).

Chromium: VERBATIM_CHROMIUM, else `chromium` on PATH (Debian's package).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import scale
from bench.common import REPO_ROOT, BenchError, verbatim_server

LIBRARY = 10_000
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "speech.wav"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
]


def chromium() -> str:
    import os

    path = os.environ.get("VERBATIM_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise BenchError("no Chromium: apt-get install -y chromium, or set VERBATIM_CHROMIUM")
    return path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="verbatim-bench-webui-", dir=args.tmp_dir))
    out: dict[str, Any] = {}
    with scale.database(tmp) as uri:
        env = {
            "VERBATIM_DATABASE_URL": uri,
            "VERBATIM_SECRET_KEY": scale.SECRET,
            "VERBATIM_RUN_WORKER_IN_API": "false",
            "VERBATIM_AUTO_MIGRATE": "false",
        }
        with verbatim_server(tmp, env=env) as server:
            owner = scale.owner_of(server)
            http = owner.fresh()
            with FIXTURE.open("rb") as fh:
                audio = http.post(
                    "/api/v1/audio", files={"file": ("three hours.wav", fh, "audio/wav")}
                ).json()
            with psycopg.connect(uri) as conn:
                started = time.perf_counter()
                scale.seed(conn, owner, 0, LIBRARY - 1)
                tid = scale.seed_big_transcript(conn, owner)
                conn.execute(
                    "UPDATE transcription SET audio_file_id = %s WHERE id = %s", (audio["id"], tid)
                )
                conn.commit()
                print(
                    f"seeded {LIBRARY} recordings and a 30,000-word transcript in "
                    f"{time.perf_counter() - started:.1f} s"
                )
            scale.vacuum_analyze(uri)
            api_page = http.get("/api/v1/audio", params={"limit": 50}).content
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium(), args=LAUNCH_ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{server.base_url}/signin")
                page.get_by_label("Email").fill(owner.client.email)
                page.get_by_label("Password").fill(owner.client.password)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{server.base_url}/library")

                ours, plain = [], []
                words = page.context.request.get(
                    f"{server.base_url}/api/v1/transcriptions/{tid}?segments_limit=0"
                ).json()["text"]
                plain_html = f"<!doctype html><html><body><p>{words}</p></body></html>"
                page.route(
                    f"{server.base_url}/plain-reference",
                    lambda route: route.fulfill(body=plain_html, content_type="text/html"),
                )
                for _ in range(max(3, args.repeat)):
                    page.goto(f"{server.base_url}/plain-reference")
                    plain.append(
                        page.evaluate(
                            "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                        )
                    )
                    page.goto(f"{server.base_url}/recordings/{audio['id']}")
                    page.wait_for_function("window.verbatimReady !== undefined")
                    ours.append(page.evaluate("window.verbatimReady"))
                out["recording_page"] = {
                    "words": page.locator(".words span").count(),
                    "interactive_ms": [round(x) for x in ours],
                    "plain_reference_ms": [round(x) for x in plain],
                    "ratio_median": round(statistics.median(ours) / statistics.median(plain), 2),
                }
                rec = out["recording_page"]
                print(
                    f"30,000-word recording page interactive (ms): {rec['interactive_ms']}; "
                    f"the same words as plain text: {rec['plain_reference_ms']}; "
                    f"ratio {rec['ratio_median']} (target: under 2000 ms)"
                )

                page.evaluate(
                    """() => { window.mutations = 0; new MutationObserver((l) => {
                      window.mutations += l.length; })
                      .observe(document.getElementById('transcript'),
                      { childList: true, subtree: true, characterData: true }); }"""
                )
                page.wait_for_function("document.getElementById('media').readyState >= 1")
                page.evaluate(
                    "() => { const m = document.getElementById('media'); "
                    "m.playbackRate = 2; m.currentTime = 0; return m.play(); }"
                )
                page.wait_for_timeout(3000)
                page.evaluate("document.getElementById('media').pause()")
                stats = page.evaluate("window.verbatimPlayer.stats()")
                gaps, work = stats["gaps"], stats["work"]
                out["playback"] = {
                    "frames": len(gaps),
                    "frame_interval_ms": {
                        "median": round(statistics.median(gaps), 1),
                        "p95": round(pct(gaps, 0.95), 1),
                        "max": round(max(gaps), 1),
                    },
                    "highlight_work_ms": {
                        "median": round(statistics.median(work), 3),
                        "p95": round(pct(work, 0.95), 3),
                        "max": round(max(work), 2),
                    },
                    "dom_mutations": page.evaluate("window.mutations"),
                }
                print(f"playback: {out['playback']}")

                page.goto(f"{server.base_url}/library?fresh=1")
                page.wait_for_load_state("networkidle")
                sizes = page.evaluate(
                    """() => Object.fromEntries([...performance.getEntriesByType('navigation'),
                      ...performance.getEntriesByType('resource')]
                      .map((e) => [e.name, e.decodedBodySize]))"""
                )
                weight = sum(sizes.values())
                out["library_page"] = {
                    "recordings": LIBRARY,
                    "bytes": weight,
                    "files": len(sizes),
                    "api_json_page_bytes": len(api_page),
                    "ratio": round(weight / len(api_page), 2),
                }
                print(
                    f"library page of {LIBRARY} recordings: {weight / 1024:.1f} KB in {len(sizes)} "
                    f"files; one API JSON page of 50: {len(api_page) / 1024:.1f} KB; ratio "
                    f"{out['library_page']['ratio']} (target: under 200 KB)"
                )
                browser.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return out
