"""Collections through HTTP on the real database: CRUD, order and moves (also concurrent),
ownership, bad input, cascades."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import select, text

from tests.conftest import ApiUser
from tests.library.helpers import count, make_transcription, user_row
from verbatim.library.collections import service
from verbatim.library.collections.schemas import ItemMove
from verbatim.models import Collection, Transcription, TranscriptionCollection, TranscriptionStatus
from verbatim.services import get_services

API = "/api/v1/collections"


async def new_collection(user: ApiUser, name: str = "Board meetings", **extra: object) -> str:
    r = await user.post(API, json={"name": name, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def add(user: ApiUser, cid: str, tid: str, **place: str) -> dict[str, object]:
    r = await user.post(f"{API}/{cid}/items", json={"transcription_id": tid, **place})
    assert r.status_code == 201, r.text
    item: dict[str, object] = r.json()
    return item


async def order(user: ApiUser, cid: str) -> list[str]:
    r = await user.get(f"{API}/{cid}/items", params={"limit": 500})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["position"] for i in items] == list(range(len(items)))
    return [i["transcription_id"] for i in items]


async def positions_are_distinct(cid: str) -> None:
    async with get_services().sessionmaker() as session:
        rows = (
            await session.scalars(
                select(TranscriptionCollection.position).where(
                    TranscriptionCollection.collection_id == uuid.UUID(cid)
                )
            )
        ).all()
    assert len(rows) == len(set(rows))


async def test_crud_items_in_order_with_duration_and_status(alice: ApiUser) -> None:
    a = await make_transcription(alice, "January", duration=61.5)
    b = await make_transcription(alice, "February", duration=30.0)
    c = await make_transcription(alice, "March", duration=12.0, status=TranscriptionStatus.running)
    cid = await new_collection(alice, "  Board   meetings ", description="Monthly calls")

    r = await alice.get(f"{API}/{cid}")
    assert r.json()["name"] == "Board meetings"  # whitespace folded
    assert r.json()["item_count"] == 0

    await add(alice, cid, a)
    await add(alice, cid, c)
    item = await add(alice, cid, b, before=c)  # between a and c
    assert item["position"] == 1
    assert await order(alice, cid) == [a, b, c]

    r = await alice.get(f"{API}/{cid}/items")
    items = r.json()["items"]
    assert r.json()["total"] == 3
    assert [(i["title"], i["duration"], i["status"]) for i in items] == [
        ("January", 61.5, "completed"),
        ("February", 30.0, "completed"),
        ("March", 12.0, "running"),
    ]
    # Paged: the second page keeps the positions of the whole collection.
    r = await alice.get(f"{API}/{cid}/items", params={"limit": 2, "offset": 2})
    assert [(i["transcription_id"], i["position"]) for i in r.json()["items"]] == [(c, 2)]

    r = await alice.post(f"{API}/{cid}/items/{c}/move", json={"before": a})
    assert r.status_code == 200, r.text
    assert r.json()["position"] == 0
    assert await order(alice, cid) == [c, a, b]
    r = await alice.post(f"{API}/{cid}/items/{c}/move", json={"after": b})
    assert r.json()["position"] == 2
    assert await order(alice, cid) == [a, b, c]

    # One transcription in many collections.
    other = await new_collection(alice, "Q1")
    await add(alice, other, a)
    r = await alice.get(API)
    listed = {c["id"]: c for c in r.json()["items"]}
    assert r.json()["total"] == 2
    assert listed[cid]["item_count"] == 3
    assert listed[cid]["total_duration"] == pytest.approx(103.5)
    assert listed[other]["item_count"] == 1

    r = await alice.patch(f"{API}/{cid}", json={"description": None})
    assert r.status_code == 200, r.text
    assert r.json()["description"] is None and r.json()["name"] == "Board meetings"
    r = await alice.patch(f"{API}/{cid}", json={"name": "Board"})
    assert r.json()["name"] == "Board"

    r = await alice.delete(f"{API}/{cid}/items/{b}")
    assert r.status_code == 204
    assert await order(alice, cid) == [a, c]
    assert (await alice.get(f"/api/v1/transcriptions/{b}")).status_code == 200


@pytest.mark.slow
async def test_many_inserts_at_one_spot_renumber_and_keep_order(alice: ApiUser) -> None:
    """Inserting again and again right after the first item exhausts the gap there: the
    collection is renumbered and the order stays what was asked."""
    first = await make_transcription(alice, "first")
    last = await make_transcription(alice, "last")
    cid = await new_collection(alice)
    await add(alice, cid, first)
    await add(alice, cid, last)
    inserted = []
    for n in range(20):
        tid = await make_transcription(alice, f"t{n}")
        await add(alice, cid, tid, before=last)
        inserted.append(tid)
    assert await order(alice, cid) == [first, *inserted, last]
    await positions_are_distinct(cid)


async def test_two_moves_at_once_are_applied_one_after_the_other(alice: ApiUser) -> None:
    """Move 1 holds its transaction open; move 2 (through HTTP) really runs at the same time and
    waits in PostgreSQL for the collection's lock, then sees move 1's result."""
    ids = [await make_transcription(alice, name) for name in "ABCD"]
    a, b, c, d = ids
    cid = await new_collection(alice)
    for tid in ids:
        await add(alice, cid, tid)
    owner = await user_row(alice)
    services = get_services()

    async with services.sessionmaker() as first, first.begin():
        user = await first.merge(owner, load=False)
        # A after D: B C D A (not committed yet).
        await service.move_item(first, user, uuid.UUID(cid), uuid.UUID(a), ItemMove(after=d))
        # D before B, against the order B C D A once move 1 commits: D B C A.
        second = asyncio.create_task(alice.post(f"{API}/{cid}/items/{d}/move", json={"before": b}))
        async with services.sessionmaker() as watcher:
            deadline = time.monotonic() + 30
            waiting = 0
            while not waiting and time.monotonic() < deadline and not second.done():
                await asyncio.sleep(0.05)
                # The second request, blocked on the collection row's lock.
                waiting = await watcher.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        " AND query LIKE '%FROM collection%FOR NO KEY UPDATE%'"
                    )
                )
                # pg_stat_activity is a snapshot per transaction: end it to see changes.
                await watcher.rollback()
            assert waiting == 1, "the second move did not wait for the first"
        assert not second.done()
    r = await second
    assert r.status_code == 200, r.text
    assert r.json()["position"] == 0
    assert await order(alice, cid) == [d, b, c, a]
    await positions_are_distinct(cid)


async def test_concurrent_moves_and_adds_keep_a_consistent_order(alice: ApiUser) -> None:
    """Many moves to the same spot at once: without the collection lock they compute the same
    midpoint and collide."""
    ids = [await make_transcription(alice, f"m{n}") for n in range(8)]
    cid = await new_collection(alice)
    for tid in ids[:6]:
        await add(alice, cid, tid)
    anchor = ids[0]
    moves = [
        alice.post(f"{API}/{cid}/items/{tid}/move", json={"after": anchor}) for tid in ids[1:6]
    ]
    adds = [alice.post(f"{API}/{cid}/items", json={"transcription_id": t}) for t in ids[6:]]
    answers = await asyncio.gather(*moves, *adds)
    assert [r.status_code for r in answers] == [200] * 5 + [201] * 2, [r.text for r in answers]
    final = await order(alice, cid)
    assert sorted(final) == sorted(ids)
    assert final[0] == anchor
    assert set(final[-2:]) == set(ids[6:])  # appended after every move
    await positions_are_distinct(cid)


async def test_another_user_gets_404_on_every_collection_endpoint(
    alice: ApiUser, bob: ApiUser
) -> None:
    mine = await make_transcription(alice, "mine")
    second = await make_transcription(alice, "second")
    theirs = await make_transcription(bob, "theirs")
    cid = await new_collection(alice, "Private")
    await add(alice, cid, mine)
    await add(alice, cid, second)
    bobs = await new_collection(bob, "Bob's")

    calls = [
        bob.get(f"{API}/{cid}"),
        bob.patch(f"{API}/{cid}", json={"name": "mine now"}),
        bob.get(f"{API}/{cid}/items"),
        bob.post(f"{API}/{cid}/items", json={"transcription_id": theirs}),
        bob.post(f"{API}/{cid}/items/{mine}/move", json={"after": second}),
        bob.delete(f"{API}/{cid}/items/{mine}"),
        bob.post(f"{API}/{cid}/exports", json={"formats": ["txt"]}),
        bob.get(f"{API}/{cid}/exports/{uuid.uuid4()}"),
        bob.delete(f"{API}/{cid}"),
    ]
    for r in await asyncio.gather(*calls):
        assert r.status_code == 404, (r.request.method, r.request.url, r.text)
        assert (
            r.json()["error"]["code"] == "collection_not_found"
            or r.json()["error"]["code"] == "export_not_found"
        )
    # Bob cannot put Alice's transcription in his own collection, nor Alice Bob's in hers.
    r = await bob.post(f"{API}/{bobs}/items", json={"transcription_id": mine})
    assert r.status_code == 404 and r.json()["error"]["code"] == "transcription_not_found"
    r = await alice.post(f"{API}/{cid}/items", json={"transcription_id": theirs})
    assert r.status_code == 404 and r.json()["error"]["code"] == "transcription_not_found"
    # Bob's list does not show Alice's collection; nothing of hers changed.
    r = await bob.get(API)
    assert [c["id"] for c in r.json()["items"]] == [bobs]
    assert (await alice.get(f"{API}/{cid}")).json()["name"] == "Private"
    assert await order(alice, cid) == [mine, second]
    assert await count(TranscriptionCollection) == 2
    assert await count(Collection) == 2


async def test_bad_input_is_refused_with_a_code_and_stores_nothing(alice: ApiUser) -> None:
    a = await make_transcription(alice, "a")
    b = await make_transcription(alice, "b")
    outside = await make_transcription(alice, "outside")
    cid = await new_collection(alice)
    await add(alice, cid, a)
    await add(alice, cid, b)

    async def refused(method: str, url: str, status: int, code: str, **kw: object) -> None:
        r = await getattr(alice, method)(url, **kw)
        assert r.status_code == status, (url, kw, r.text)
        assert r.json()["error"]["code"] == code, r.text

    for body in (
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": 5},
        {"name": "ok", "colour": "red"},
        {"name": "ok", "description": "x" * 5001},
        {"name": "nul\x00"},
    ):
        await refused("post", API, 422, "validation_error", json=body)
    await refused("patch", f"{API}/{cid}", 422, "validation_error", json={})
    await refused("patch", f"{API}/{cid}", 422, "validation_error", json={"name": None})
    await refused("get", f"{API}/not-a-uuid", 422, "validation_error")
    await refused("get", f"{API}/{uuid.uuid4()}", 404, "collection_not_found")
    await refused("get", f"{API}/{cid}/items", 422, "validation_error", params={"limit": 0})

    items = f"{API}/{cid}/items"
    await refused("post", items, 422, "validation_error", json={"transcription_id": "nope"})
    await refused(
        "post",
        items,
        422,
        "validation_error",
        json={"transcription_id": outside, "before": a, "after": b},
    )
    await refused("post", items, 409, "already_in_collection", json={"transcription_id": a})
    await refused(
        "post", items, 404, "transcription_not_found", json={"transcription_id": str(uuid.uuid4())}
    )
    await refused(
        "post",
        items,
        422,
        "anchor_not_in_collection",
        json={"transcription_id": outside, "before": str(uuid.uuid4())},
    )
    await refused("post", f"{items}/{a}/move", 422, "validation_error", json={})
    await refused(
        "post", f"{items}/{a}/move", 422, "validation_error", json={"before": b, "after": b}
    )
    await refused("post", f"{items}/{a}/move", 422, "invalid_move", json={"before": a})
    await refused(
        "post", f"{items}/{a}/move", 422, "anchor_not_in_collection", json={"after": outside}
    )
    await refused(
        "post", f"{items}/{outside}/move", 404, "collection_item_not_found", json={"after": a}
    )
    await refused("delete", f"{items}/{outside}", 404, "collection_item_not_found")

    exports = f"{API}/{cid}/exports"
    await refused("post", exports, 422, "validation_error", json={"formats": []})
    await refused("post", exports, 422, "validation_error", json={"formats": "txt"})
    await refused("post", exports, 422, "unsupported_format", json={"formats": ["txt", "docx"]})
    empty = await new_collection(alice, "empty")
    await refused(
        "post", f"{API}/{empty}/exports", 409, "collection_empty", json={"formats": ["txt"]}
    )

    assert await order(alice, cid) == [a, b]
    assert await count(Collection) == 2
    assert await count(TranscriptionCollection) == 2
    r = await alice.get("/api/v1/jobs")
    assert r.json()["total"] == 0


async def test_deleting_a_transcription_leaves_its_collections_and_the_reverse(
    alice: ApiUser,
) -> None:
    a = await make_transcription(alice, "a")
    b = await make_transcription(alice, "b")
    first = await new_collection(alice, "first")
    second = await new_collection(alice, "second")
    for cid in (first, second):
        await add(alice, cid, a)
        await add(alice, cid, b)

    r = await alice.delete(f"/api/v1/transcriptions/{a}")
    assert r.status_code == 204
    assert await order(alice, first) == [b]
    assert await order(alice, second) == [b]
    assert (await alice.get(f"{API}/{first}")).json()["item_count"] == 1

    r = await alice.delete(f"{API}/{first}")
    assert r.status_code == 204
    assert (await alice.get(f"{API}/{first}")).status_code == 404
    assert (await alice.get(f"/api/v1/transcriptions/{b}")).status_code == 200
    assert await order(alice, second) == [b]
    assert await count(Transcription) == 1
    assert await count(TranscriptionCollection) == 1
