"""Keyset pages of the library lists, plan mode and column selection (issue 15).

Rows are written straight to the database (no upload, no model): what is tested is listing.
Many rows share one created_at on purpose, so the (created_at, id) tie-break is exercised.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import ApiUser
from verbatim.kit import pagination
from verbatim.models import (
    AudioFile,
    Collection,
    Job,
    JobStatus,
    JobType,
    Transcription,
    TranscriptionStatus,
)
from verbatim.services import get_services

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LISTS = ["/api/v1/audio", "/api/v1/transcriptions", "/api/v1/jobs"]


async def me(user: ApiUser) -> dict[str, Any]:
    data: dict[str, Any] = (await user.get("/api/v1/auth/me")).json()
    return data


async def seed(user: ApiUser, stamps: list[datetime]) -> list[str]:
    """One audio file, transcription and job per stamp, created at that stamp; their ids are
    the same uuid for the three, so one expected order serves the three lists."""
    owner = await me(user)
    ids: list[str] = []
    async with get_services().sessionmaker() as session:
        for i, stamp in enumerate(stamps):
            row_id = uuid.uuid4()
            common = {"user_id": owner["id"], "tenant_id": owner["tenant_id"], "created_at": stamp}
            session.add(
                AudioFile(
                    id=row_id,
                    storage_key=f"seed/{row_id}",
                    original_filename=f"file-{i}.wav",
                    size_bytes=1000 + i,
                    sha256=row_id.hex * 2,
                    mime_type="audio/wav",
                    container="wav",
                    codec="pcm_s16le",
                    duration=1.5,
                    **common,
                )
            )
            await session.flush()
            session.add(
                Transcription(
                    id=row_id,
                    audio_file_id=row_id,
                    status=TranscriptionStatus.completed if i % 3 else TranscriptionStatus.failed,
                    language="en",
                    engine="faster-whisper",
                    model_name="tiny.en",
                    options={"beam_size": 5},
                    text="a long text " * 50,
                    quality={"avg_logprob": -0.2},
                    word_count=150,
                    **common,
                )
            )
            await session.flush()
            session.add(
                Job(
                    id=row_id,
                    type=JobType.transcription,
                    status=JobStatus.completed if i % 3 else JobStatus.failed,
                    stage="done",
                    audio_file_id=row_id,
                    transcription_id=row_id,
                    payload={"detail": {"n": i}},
                    **common,
                )
            )
            ids.append(str(row_id))
        await session.commit()
    return ids


def newest_first(rows: list[tuple[datetime, str]]) -> list[str]:
    # created_at DESC, then id ASC (as PostgreSQL compares uuids: by their bytes).
    return [i for _, i in sorted(rows, key=lambda r: (-r[0].timestamp(), uuid.UUID(r[1]).bytes))]


async def walk(user: ApiUser, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        r = await user.get(path, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        assert page["has_more"] == (page["next_cursor"] is not None)
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the walk did not end")


def tied_stamps(n: int) -> list[datetime]:
    # Groups of four rows on one microsecond: page boundaries fall inside groups.
    return [T0 + timedelta(seconds=i // 4) for i in range(n)]


@pytest.mark.parametrize("path", LISTS)
async def test_cursor_walks_every_row_once_with_ties(
    alice: ApiUser, bob: ApiUser, path: str
) -> None:
    stamps = tied_stamps(22)
    mine = await seed(alice, stamps)
    theirs = await seed(bob, stamps[:9])
    items = await walk(alice, path, limit=3)
    assert [it["id"] for it in items] == newest_first(list(zip(stamps, mine, strict=True)))
    assert not {it["id"] for it in items} & set(theirs)
    # Bob walks only his own rows, the same way.
    assert sorted(it["id"] for it in await walk(bob, path, limit=4)) == sorted(theirs)


async def test_cursor_walk_under_inserts(alice: ApiUser, bob: ApiUser) -> None:
    stamps = tied_stamps(20)
    base = await seed(alice, stamps)
    expected = list(zip(stamps, base, strict=True))
    seen: list[str] = []
    cursor = None
    step = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await alice.get("/api/v1/audio", params=params)).json()
        seen += [it["id"] for it in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        step += 1
        # Newer rows arrive (before the position: not part of this walk), an older one too
        # (after the position: the walk reaches it), one tied with the last row seen, and
        # other users' rows everywhere.
        newer = T0 + timedelta(days=1, seconds=step)
        older = T0 - timedelta(seconds=step)
        await seed(alice, [newer])
        expected += [(older, i) for i in await seed(alice, [older])]
        await seed(bob, [newer, older, stamps[0]])
    assert len(seen) == len(set(seen))
    assert seen == newest_first(expected)


async def test_offset_still_pages_and_is_bounded(alice: ApiUser) -> None:
    stamps = tied_stamps(7)
    ids = newest_first(list(zip(stamps, await seed(alice, stamps), strict=True)))
    page = (await alice.get("/api/v1/jobs", params={"limit": 3, "offset": 3})).json()
    assert [j["id"] for j in page["items"]] == ids[3:6]
    assert (page["total"], page["total_exact"], page["has_more"]) == (7, True, True)
    # The cursor of an offset page continues right after it.
    rest = (await alice.get("/api/v1/jobs", params={"cursor": page["next_cursor"]})).json()
    assert [j["id"] for j in rest["items"]] == ids[6:] and rest["next_cursor"] is None
    r = await alice.get("/api/v1/jobs", params={"offset": pagination.MAX_KEYSET_OFFSET})
    assert r.status_code == 200 and r.json()["items"] == []
    r = await alice.get("/api/v1/jobs", params={"offset": pagination.MAX_KEYSET_OFFSET + 1})
    assert r.status_code == 422 and r.json()["error"]["code"] == "offset_too_large"


async def test_bad_cursors_are_refused(alice: ApiUser, bob: ApiUser) -> None:
    await seed(alice, tied_stamps(5))
    page = (await alice.get("/api/v1/audio", params={"limit": 2})).json()
    good = page["next_cursor"]
    body, mac = good.split(".")
    forged_body = pagination._b64(f"0:{uuid.uuid4().hex}".encode())
    bad = [
        "garbage",
        "a.b.c",
        f"{body}.{mac[:-2]}AA" if not mac.endswith("AA") else f"{body}.{mac[:-2]}BB",
        f"{forged_body}.{mac}",
        f"{body[:-1]}.{mac}",
        "x" * 150 + "." + "y",
    ]
    for cursor in bad:
        r = await alice.get("/api/v1/audio", params={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.text)
        assert r.json()["error"]["code"] == "invalid_cursor"
    # A cursor belongs to its list: one from /audio is refused by /jobs and /transcriptions.
    for path in ("/api/v1/jobs", "/api/v1/transcriptions", "/api/v1/audio/downloads"):
        r = await alice.get(path, params={"cursor": good})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor"
    r = await alice.get("/api/v1/audio", params={"cursor": good, "offset": 2})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_page"
    r = await alice.get("/api/v1/audio", params={"cursor": "z" * 201})
    assert r.status_code == 422
    # Another user's cursor is only a position: it never shows that user's rows.
    r = await bob.get("/api/v1/audio", params={"cursor": good})
    assert r.status_code == 200 and r.json()["items"] == []


async def test_total_is_exact_up_to_the_cap_then_an_estimate(
    alice: ApiUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(alice, tied_stamps(12))
    page = (await alice.get("/api/v1/transcriptions", params={"limit": 5})).json()
    assert (page["total"], page["total_exact"]) == (12, True)
    failed = (await alice.get("/api/v1/transcriptions", params={"status": "failed"})).json()
    assert (failed["total"], failed["total_exact"]) == (4, True)
    assert all(t["status"] == "failed" for t in failed["items"]) and len(failed["items"]) == 4
    monkeypatch.setattr(pagination, "COUNT_CAP", 6)
    page = (await alice.get("/api/v1/transcriptions", params={"limit": 5})).json()
    # Past the cap: PostgreSQL's estimate, never below what was counted.
    assert page["total_exact"] is False and page["total"] >= 7
    assert len(page["items"]) == 5 and page["has_more"] is True
    failed = (await alice.get("/api/v1/transcriptions", params={"status": "failed"})).json()
    assert (failed["total"], failed["total_exact"]) == (4, True)


async def test_list_items_match_the_single_reads(alice: ApiUser) -> None:
    """The lists select only the columns they show: every field is still there and equal to
    what a GET of the same record answers."""
    ids = await seed(alice, tied_stamps(3))
    audio = (await alice.get("/api/v1/audio")).json()["items"]
    for item in audio:
        assert item == (await alice.get(f"/api/v1/audio/{item['id']}")).json()
    jobs = (await alice.get("/api/v1/jobs")).json()["items"]
    for item in jobs:
        assert item == (await alice.get(f"/api/v1/jobs/{item['id']}")).json()
        assert item["detail"]["n"] in (0, 1, 2)
    listed = (await alice.get("/api/v1/transcriptions")).json()["items"]
    assert {t["id"] for t in listed} == set(ids)
    for item in listed:
        assert "text" not in item and "quality" not in item
        full = (await alice.get(f"/api/v1/transcriptions/{item['id']}")).json()
        assert full["text"] == "a long text " * 50 and full["quality"] == {"avg_logprob": -0.2}
        assert {k: full[k] for k in item} == item
        assert item["options"] == {"beam_size": 5} and item["word_count"] == 150


async def test_connections_plan_every_statement_for_its_parameters(alice: ApiUser) -> None:
    engine = get_services().engine
    async with engine.connect() as conn:
        assert await conn.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
        await conn.rollback()
        await conn.execute(text("SELECT 1"))
        await conn.rollback()
        # Still set on the same connection after rollbacks (it was committed on connect).
        assert await conn.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"


async def test_collections_list_walks_by_cursor_and_still_takes_offset(
    alice: ApiUser, bob: ApiUser
) -> None:
    """The collections list is a keyset list like the library's (newest first, ties by id);
    offset still pages, and a cursor from another list is refused."""
    owner = await me(alice)
    stamps = tied_stamps(11)
    rows: list[tuple[datetime, str]] = []
    async with get_services().sessionmaker() as session:
        for i, stamp in enumerate(stamps):
            row_id = uuid.uuid4()
            session.add(
                Collection(
                    id=row_id,
                    user_id=owner["id"],
                    tenant_id=owner["tenant_id"],
                    name=f"c{i}",
                    created_at=stamp,
                )
            )
            rows.append((stamp, str(row_id)))
        await session.commit()
    expected = newest_first(rows)
    items = await walk(alice, "/api/v1/collections", limit=3)
    assert [it["id"] for it in items] == expected
    assert all("item_count" in it for it in items)  # still described
    assert await walk(bob, "/api/v1/collections", limit=3) == []
    r = await alice.get("/api/v1/collections", params={"limit": 4, "offset": 4})
    page = r.json()
    assert [it["id"] for it in page["items"]] == expected[4:8]
    assert page["total"] == 11 and page["total_exact"] is True and page["has_more"] is True
    # The cursor of an offset page continues right after it.
    rest = (await alice.get("/api/v1/collections", params={"cursor": page["next_cursor"]})).json()
    assert [it["id"] for it in rest["items"]] == expected[8:]
    await seed(alice, stamps[:2])
    audio_cursor = (await alice.get("/api/v1/audio", params={"limit": 1})).json()["next_cursor"]
    r = await alice.get("/api/v1/collections", params={"cursor": audio_cursor})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor"


async def test_an_estimate_is_reused_for_a_while_and_an_exact_total_never(
    alice: ApiUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the cap the total is an estimate; the same filter reuses it for ESTIMATE_TTL_S
    without counting again (issue 15), while an exact total is counted on every page."""
    from sqlalchemy import event

    await seed(alice, tied_stamps(12))
    counts: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "count(*)" in statement.lower() or statement.lstrip().upper().startswith("EXPLAIN"):
            counts.append(statement)

    engine = get_services().engine.sync_engine
    event.listen(engine, "before_cursor_execute", spy)
    try:
        monkeypatch.setattr(pagination, "COUNT_CAP", 6)
        first = (await alice.get("/api/v1/transcriptions", params={"limit": 5})).json()
        assert first["total_exact"] is False and first["total"] >= 7
        assert len(counts) == 2  # the bounded count, then the EXPLAIN for the estimate
        again = (await alice.get("/api/v1/transcriptions", params={"limit": 5})).json()
        assert (again["total"], again["total_exact"]) == (first["total"], False)
        assert len(counts) == 2  # reused: nothing counted
        # Another filter is another entry, and an exact one is counted each time.
        for _ in range(2):
            failed = (await alice.get("/api/v1/transcriptions", params={"status": "failed"})).json()
            assert (failed["total"], failed["total_exact"]) == (4, True)
        assert len(counts) == 4
        # Once the time is up the estimate is counted afresh.
        monkeypatch.setattr(pagination, "ESTIMATE_TTL_S", 0.0)
        (await alice.get("/api/v1/transcriptions", params={"limit": 5})).raise_for_status()
        assert len(counts) == 6
    finally:
        event.remove(engine, "before_cursor_execute", spy)
