"""`verbatim serve --api-workers 2`: two API processes on one port and the job worker in a
process of its own (issue 15, decision 0029). A transcription completes through it, the
metrics show every process's requests, and SIGINT stops every process."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import FIXTURES
from tests.live import free_port, wait_until_serving, worker_env
from tests.test_server import VERBATIM
from verbatim.config import Settings

METRICS_TOKEN = "metrics-token-" + "m" * 30


def _requests_counted(base: str) -> float:
    body = httpx.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    ).text
    pattern = r'^verbatim_http_requests_total\{[^}]*route="/health/live"[^}]*\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, body, flags=re.M))


@pytest.mark.slow
def test_two_api_processes_and_a_worker_process(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = worker_env(settings, VERBATIM_METRICS_TOKEN=METRICS_TOKEN, VERBATIM_LOG_JSON="false")
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [VERBATIM, "serve", "--api-workers", "2", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(proc, base, path="/health/ready", timeout_s=120)
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = [" ".join(c.cmdline()) for c in children]
        assert sum("verbatim.cli worker" in c for c in commands) == 1, commands
        assert sum("multiprocessing" in c for c in commands) >= 2, commands

        # Work queued through either API process is done by the worker process.
        with httpx.Client(base_url=base, timeout=30) as client:
            password = "correct horse battery"
            email = "multi@example.com"
            assert (
                client.post(
                    "/api/v1/auth/register", json={"email": email, "password": password}
                ).status_code
                == 201
            )
            token = client.post(
                "/api/v1/auth/login", json={"email": email, "password": password}
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            with (FIXTURES / "speech.wav").open("rb") as fh:
                audio = client.post("/api/v1/audio", files={"file": ("speech.wav", fh)}).json()
            started = client.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
            assert started.status_code == 202, started.text
            job_id = started.json()["job_id"]
            deadline = time.monotonic() + 240
            while (job := client.get(f"/api/v1/jobs/{job_id}").json())["status"] not in (
                "completed",
                "failed",
                "cancelled",
            ):
                assert time.monotonic() < deadline, job
                time.sleep(0.5)
            assert job["status"] == "completed", job
            transcription = client.get(f"/api/v1/transcriptions/{job['transcription_id']}")
            assert "quick brown fox" in transcription.json()["text"].lower()

        # Every process's requests are counted, whichever process answers /metrics.
        before = _requests_counted(base)
        for _ in range(40):  # a new connection each: the two processes share them out
            assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
        assert _requests_counted(base) - before >= 40
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    # Grandchildren (media-probe workers, resource trackers) end when their pipes close, a
    # moment after the parent: give them that moment, not more.
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], [
        " ".join(p.cmdline()) for p in alive
    ]


def test_a_metrics_port_without_the_worker_is_refused(settings: Settings, tmp_path: Path) -> None:
    env = worker_env(settings, VERBATIM_METRICS_PORT=str(free_port()))
    done = subprocess.run(
        [VERBATIM, "serve", "--api-workers", "2", "--no-worker", "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"VERBATIM_METRICS_PORT" in done.stderr


def test_a_job_worker_that_keeps_dying_is_restarted_ever_more_slowly() -> None:
    from verbatim.serve_processes import RESTART_DELAY_MAX_S, restart_delay

    delays = []
    delay = 0.0
    for _ in range(8):  # dies two seconds after each start
        delay = restart_delay(delay, 2.0)
        delays.append(delay)
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays[-1] == RESTART_DELAY_MAX_S
    # After a run that lasted, the next restart is quick again.
    assert restart_delay(RESTART_DELAY_MAX_S, 600.0) == 1.0
