"""The embedded PostgreSQL's lifetime across real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from verbatim import embedded_db

VERBATIM = str(Path(sys.executable).with_name("verbatim"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postmasters(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(str(pgdata) in part for part in cmdline):
            found.append(proc)
    return found


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path (0700 parents the server's system user cannot enter as root).
    root = Path(tempfile.mkdtemp(prefix="verbatim-test-embedded-"))
    data = root / "data"
    yield data
    pgdata = (data / "postgres").resolve()
    if pgdata.exists() and embedded_db.is_running(pgdata):  # never leave a server behind
        embedded_db.EmbeddedServer(pgdata=pgdata, uri="", started_here=True).stop()
    shutil.rmtree(root, ignore_errors=True)


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VERBATIM_DATA_DIR": str(data_dir),
        "VERBATIM_ENV": "development",
        "VERBATIM_LOG_JSON": "false",
    }
    env.pop("VERBATIM_DATABASE_URL", None)
    proc = subprocess.Popen(
        [VERBATIM, "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("verbatim serve did not start")


@pytest.mark.slow
def test_a_server_that_adopted_an_orphaned_postgres_stops_it(data_dir: Path) -> None:
    pgdata = (data_dir / "postgres").resolve()
    first = serve(data_dir, free_port())
    assert embedded_db.is_running(pgdata)
    first.kill()  # SIGKILL: no chance to stop its postmaster
    first.wait(10)
    assert embedded_db.is_running(pgdata), "the postmaster outlives a SIGKILLed owner"

    second = serve(data_dir, free_port())  # adopts the running postmaster
    second.send_signal(signal.SIGTERM)  # a clean shutdown
    # uvicorn shuts down, then re-raises the signal it caught: exit status -SIGTERM.
    assert second.wait(60) in (0, -signal.SIGTERM)
    assert not embedded_db.is_running(pgdata)
    assert postmasters(pgdata) == []


HOLDER = """
import json, sys, time
from pathlib import Path
from verbatim import embedded_db
s = embedded_db.start(Path(sys.argv[1]))
print(json.dumps({"started_here": s.started_here, "adopted": s.adopted}), flush=True)
if sys.argv[2] == "hold":
    time.sleep(600)
"""


def hold(pgdata: Path, mode: str) -> tuple[subprocess.Popen[str], dict[str, bool]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pgdata), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "holder failed to start the server"
    return proc, json.loads(line)


@pytest.mark.slow
def test_attaching_next_to_a_live_holder_does_not_own_the_server(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    pgdata = data_dir / "postgres"
    holder, first = hold(pgdata, "hold")
    try:
        assert first == {"started_here": True, "adopted": False}
        attached, second = hold(pgdata, "exit")
        attached.wait(30)
        assert second == {"started_here": False, "adopted": False}  # its holder is alive
        holder.kill()
        holder.wait(10)
        adopter, third = hold(pgdata, "exit")
        adopter.wait(30)
        assert third == {"started_here": False, "adopted": True}  # every holder is gone
    finally:
        holder.kill()
