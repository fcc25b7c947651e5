"""Browser test harness: a Chromium for Playwright, and the real app as `verbatim serve` (its own
worker and the real speech model) on a fresh database.

Chromium: VERBATIM_CHROMIUM, else one on PATH (Debian's `chromium`), else Playwright's own. When
there is none it is installed where that can work: Debian's package as root (apt-get), else
`playwright install chromium`. When nothing works the tests FAIL naming what to install; they
never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import TEMPLATE_DB, db_uri
from tests.live import wait_until_serving
from tests.test_server import free_port
from verbatim import embedded_db

VERBATIM = str(Path(sys.executable).with_name("verbatim"))
SCREENSHOTS = Path(__file__).parent / "screenshots"
# Debian's chromium under Playwright (NOTES.md): no sandbox as root, no background traffic.
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
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOW_TO = (
    "No Chromium for the browser tests. Install one: `apt-get install -y chromium` (Debian/"
    "Ubuntu, as root), or `.venv/bin/playwright install chromium` where it can download, or set "
    "VERBATIM_CHROMIUM=/path/to/chrome."
)


def _playwright_bundled() -> str | None:
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            path = p.chromium.executable_path
    except Exception:
        return None
    return path if path and Path(path).exists() else None


def _found() -> str | None:
    explicit = os.environ.get("VERBATIM_CHROMIUM")
    if explicit:
        if not Path(explicit).exists():
            pytest.fail(f"VERBATIM_CHROMIUM={explicit} does not exist. {HOW_TO}")
        return explicit
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return _playwright_bundled()


def _install() -> list[str]:
    """Try to install a Chromium; returns what was tried and how it went."""
    tried: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        for cmd in (
            ["apt-get", "install", "-y", "chromium"],
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "chromium"],
        ):
            r = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=900,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
            tried.append(f"{' '.join(cmd)}: exit {r.returncode}")
            if cmd[1] == "install" and r.returncode == 0:
                return tried
    r = subprocess.run(
        [sys.executable, "-m", "playwright", "install", "chromium"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    tried.append(f"playwright install chromium: exit {r.returncode}")
    return tried


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _found()
    if path:
        return path
    tried = _install()
    path = _found()
    if not path:
        pytest.fail(f"{HOW_TO} Tried: {'; '.join(tried)}")
    return path


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path, args=LAUNCH_ARGS)
        yield b
        await b.close()


@dataclass
class Server:
    url: str
    database_url: str
    data_dir: Path


@pytest.fixture(scope="module")
def web_server(
    request: pytest.FixtureRequest,
    pg_server: embedded_db.EmbeddedServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """`verbatim serve` with its in-process worker and the real model, on a fresh database.
    A test module may set more of its environment in `SERVER_ENV`."""
    name = f"w_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    database_url = db_uri(pg_server, name)
    data_dir = tmp_path_factory.mktemp("web") / "data"
    port = free_port()
    env = {
        **os.environ,
        "VERBATIM_ENV": "test",
        "VERBATIM_DATA_DIR": str(data_dir),
        "VERBATIM_DATABASE_URL": database_url,
        "VERBATIM_AUTO_MIGRATE": "false",
        "VERBATIM_SECRET_KEY": "test-secret-" + "x" * 40,
        "VERBATIM_LOG_JSON": "false",
        "VERBATIM_REGISTER_RATE_PER_ADDRESS": "1000",
        "VERBATIM_LOGIN_RATE_PER_ADDRESS": "1000",
        **getattr(request.module, "SERVER_ENV", {}),
    }
    log = (data_dir.parent / "server.log").open("wb")
    proc = subprocess.Popen(
        [VERBATIM, "serve", "--worker", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, url, timeout_s=90)
        yield Server(url, database_url, data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        with psycopg.connect(pg_server.uri, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
