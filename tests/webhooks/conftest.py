from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.conftest import ApiUser, make_settings, register
from tests.webhooks.receiver import Receiver
from verbatim.app import create_app
from verbatim.config import Settings
from verbatim.engines.process_pool import EnginePool

# The receivers listen on 127.0.0.2, the one network these tests allow-list; 127.0.0.1 and
# everything else private stays refused.
ALLOW = [ip_network("127.0.0.2/32")]
FAST_RETRIES: dict[str, Any] = {
    "webhook_allow_networks": ALLOW,
    "webhook_retry_base_s": 0.2,
    "webhook_retry_max_s": 0.4,
    "webhook_max_attempts": 3,
    "webhook_timeout_s": 2.0,
    "worker_poll_s": 0.2,
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, **FAST_RETRIES)


@pytest.fixture
async def app_client(
    settings: Settings, engine_pool: EnginePool
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, with_worker=True, engine_pool=engine_pool)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://verbatim.test", timeout=60
        ) as client:
            yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def add_endpoint(user: ApiUser, receiver: Receiver, path: str, **body: Any) -> dict[str, Any]:
    r = await user.post("/api/v1/webhooks", json={"url": receiver.url + path, **body})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    receiver.secret = created["secret"]
    return created


__all__ = ["add_endpoint", "register"]
