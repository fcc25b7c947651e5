"""The hub: one LISTEN connection for every subscriber, and the replay that spares a stream a
second state read (what arrived between its read and its subscription)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import psycopg

from verbatim.events.hub import CHANNEL, JobEventHub


def notify(database_url: str, user_id: uuid.UUID, seq: int) -> None:
    payload = json.dumps({"user_id": str(user_id), "id": "j", "seq": seq, "status": "running"})
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


async def next_event(queue: asyncio.Queue[dict[str, object]]) -> dict[str, object]:
    return await asyncio.wait_for(queue.get(), 5)


async def test_replay_covers_the_gap_between_read_and_subscribe(database_url: str) -> None:
    hub = JobEventHub(database_url)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    try:
        before_listening = time.monotonic()
        first, covered = await hub.subscribe(alice, since=before_listening)
        assert covered is False  # the connection started after that read: read again
        read_at = time.monotonic()  # a second stream reads its state...
        await asyncio.to_thread(notify, database_url, alice, 7)  # ...a change commits...
        await asyncio.to_thread(notify, database_url, bob, 8)
        assert (await next_event(first.queue))["seq"] == 7
        second, covered = await hub.subscribe(alice, since=read_at)  # ...then it subscribes
        assert covered is True
        assert (await next_event(second.queue))["seq"] == 7  # replayed, bob's not
        assert second.queue.empty()
        late, covered = await hub.subscribe(alice, since=time.monotonic())
        assert covered is True and late.queue.empty()  # nothing since its read
        assert hub.connects == 1 and hub.subscriber_count == 3
        for sub in (first, second, late):
            await hub.unsubscribe(sub)
        assert not hub.listening
    finally:
        await hub.close()


async def test_a_stream_ends_cleanly_when_nothing_can_listen(tmp_path: object) -> None:
    """No database to listen to: the stream ends (an EventSource reconnects with its last id)
    instead of breaking the connection, and nothing keeps trying in the background."""
    from verbatim.events.endpoints import _ended_quietly
    from verbatim.events.service import user_stream

    hub = JobEventHub(f"postgresql://postgres:@/none?host={tmp_path}", reconnect_s=0.1)
    started = time.monotonic()
    stream = user_stream(hub, None, uuid.uuid4(), None, [], time.monotonic(), uuid.uuid4())  # type: ignore[arg-type]
    assert [e async for e in _ended_quietly(stream)] == []
    assert 5 < time.monotonic() - started < 30  # waited for the listener, then gave up
    assert hub.subscriber_count == 0 and not hub.listening and hub.connects == 0
    await hub.close()
