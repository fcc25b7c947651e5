"""Argon2 runs off the event loop, at most HASH_CONCURRENCY at once per process."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from tests.auth.helpers import login
from tests.conftest import register
from verbatim.auth import security


class HashSpy:
    """Wraps the real argon2 calls to see which thread runs them and how many overlap."""

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.running = 0
        self.most = 0
        self.calls = 0
        self._lock = threading.Lock()

    def wrap(self, real):  # type: ignore[no-untyped-def]
        def spy(*args):  # type: ignore[no-untyped-def]
            with self._lock:
                self.calls += 1
                self.running += 1
                self.most = max(self.most, self.running)
                self.threads.add(threading.get_ident())
            try:
                return real(*args)
            finally:
                with self._lock:
                    self.running -= 1

        return spy


async def test_login_and_register_hash_off_the_event_loop(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = HashSpy()
    monkeypatch.setattr(security, "verify_password", spy.wrap(security.verify_password))
    monkeypatch.setattr(security, "hash_password", spy.wrap(security.hash_password))
    await register(app_client, "loop@example.com")
    results = await asyncio.gather(
        *(login(app_client, "loop@example.com", f"wrong {i}") for i in range(8))
    )
    assert [r.status_code for r in results] == [401] * 8
    assert spy.calls == 10  # one hash (register), one verify (login), eight verifies
    assert threading.get_ident() not in spy.threads  # never on the event loop's thread
    assert 1 <= spy.most <= security.HASH_CONCURRENCY
