"""A worker killed in the middle of a delivery (the receiver has the request, no answer yet):
after a new worker starts, stalled-job recovery sends the message again, with the same
webhook-id, so the receiver can drop the duplicate."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import make_settings, register
from tests.live import spawn_worker, stop_worker
from tests.webhooks.conftest import FAST_RETRIES
from tests.webhooks.receiver import Receiver
from verbatim.app import create_app


@pytest.mark.slow
async def test_a_worker_killed_mid_delivery(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, database_url, **FAST_RETRIES)
    worker_settings = {
        "VERBATIM_WEBHOOK_ALLOW_NETWORKS": "127.0.0.2/32",
        "VERBATIM_WEBHOOK_TIMEOUT_S": "60",
    }
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    # The API runs no worker: only the worker processes deliver.
    app = create_app(settings, with_worker=False)
    try:
        async with (
            LifespanManager(app, startup_timeout=60) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://t", timeout=30
            ) as client,
        ):
            alice = await register(client)
            r = await alice.post("/api/v1/webhooks", json={"url": receiver.url + "/hang"})
            hook = r.json()
            receiver.secret = hook["secret"]
            receiver.script("/hang", hang_times=1, hang_s=40)
            r = await alice.post(f"/api/v1/webhooks/{hook['id']}/test")
            delivery = r.json()

            workers.append(spawn_worker(settings, log, **worker_settings))
            deadline = time.monotonic() + 90
            while not receiver.on("/hang"):
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            workers[0].send_signal(signal.SIGKILL)  # mid-request: the receiver has not answered
            workers[0].wait(timeout=10)
            d = (
                await alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}")
            ).json()
            assert d["status"] == "pending" and d["attempts"] == 0

            workers.append(spawn_worker(settings, log, **worker_settings))
            deadline = time.monotonic() + 120
            while True:
                d = (
                    await alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}")
                ).json()
                if d["status"] != "pending":
                    break
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.3)
            assert d["status"] == "succeeded", (d, log.read_text()[-3000:])
            got = receiver.on("/hang")
            assert len(got) == 2  # the interrupted attempt and the one after the restart
            assert {g.headers["webhook-id"] for g in got} == {delivery["webhook_id"]}
            assert all(g.error is None for g in got)  # both signed correctly
            assert got[0].verified == got[1].verified
            job = (await alice.get(f"/api/v1/jobs/{d['job_id']}")).json()
            assert job["status"] == "completed" and job["attempts"] == 2
    finally:
        for w in workers:
            stop_worker(w)
