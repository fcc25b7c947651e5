"""Ordinary bad input is a 4xx with a code, never a 500 (issue 7, section 8)."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import FIXTURES, ApiUser
from verbatim.embedded_db import to_sqlalchemy_url
from verbatim.errors import install_error_handlers
from verbatim.kit.pagination import MAX_KEYSET_OFFSET

LISTS = [
    "/api/v1/audio",
    "/api/v1/transcriptions",
    "/api/v1/jobs",
    "/api/v1/audio/downloads",
    "/api/v1/api-keys",
]
KEYSET_LISTS = LISTS[:4]


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert r.status_code == status, r.text
    error: dict[str, object] = r.json()["error"]
    assert error["code"]
    if code is not None:
        assert error["code"] == code, error
    return error


async def test_huge_offsets_and_limits_are_refused(alice: ApiUser) -> None:
    for path in LISTS:
        # 2**63 and above reached PostgreSQL as OFFSET and came back as `bigint out of range`.
        for offset in (2**63, 2**63 + 1, 10**30, 1_000_000_001):
            r = await alice.get(path, params={"offset": offset})
            assert_error(r, 422, "validation_error")
        assert_error(await alice.get(path, params={"limit": 501}), 422, "validation_error")
        r = await alice.get(path, params={"limit": 500, "offset": 1_000_000_000})
        if path in KEYSET_LISTS:
            # Keyset lists bound offset lower and point at next_cursor (issue 15).
            assert_error(r, 422, "offset_too_large")
            r = await alice.get(path, params={"limit": 500, "offset": MAX_KEYSET_OFFSET})
        assert r.status_code == 200, r.text

    some_id = uuid.uuid4()
    for params in ({"offset": 2**63}, {"limit": 501}):
        r = await alice.get(f"/api/v1/transcriptions/{some_id}/segments", params=params)
        assert_error(r, 422)
    for params in ({"segments_offset": 2**63}, {"segments_limit": 501}):
        r = await alice.get(f"/api/v1/transcriptions/{some_id}", params=params)
        assert_error(r, 422)


async def test_nul_in_a_query_filter_is_refused(alice: ApiUser) -> None:
    r = await alice.get("/api/v1/transcriptions", params={"language": "e\x00n"})
    assert_error(r, 422, "invalid_input")
    r = await alice.get("/api/v1/transcriptions", params={"language": "en"})
    assert r.status_code == 200


async def test_nul_in_body_text_is_refused_and_nothing_is_stored(alice: ApiUser) -> None:
    r = await alice.post("/api/v1/api-keys", json={"name": "laptop\x00"})
    assert_error(r, 422, "validation_error")
    assert (await alice.get("/api/v1/api-keys")).json()["items"] == []

    for body in (
        {"filename": "a\x00.wav", "size": 1000},
        {"filename": "a.wav", "size": 1000, "content_type": "audio/wav\x00"},
    ):
        assert_error(await alice.post("/api/v1/uploads", json=body), 422, "validation_error")

    r = await alice.post("/api/v1/audio/downloads", json={"url": "https://example.com/\x00"})
    assert_error(r, 422)
    r = await alice.post(
        "/api/v1/audio/downloads",
        json={"url": "https://example.com/a.mp3", "transcribe": {"language": "e\x00"}},
    )
    assert_error(r, 422, "validation_error")
    r = await alice.post("/api/v1/audio/batch-delete", json={"ids": ["x\x00"]})
    assert_error(r, 422, "validation_error")
    assert (await alice.get("/api/v1/jobs")).json()["total"] == 0


async def test_lone_surrogates_are_refused(alice: ApiUser) -> None:
    raw = b'{"name": "key \\ud800"}'
    r = await alice.post(
        "/api/v1/api-keys", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(r, 422, "validation_error")


async def test_nul_in_a_transcription_request_is_refused(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    for body in ({"model": "tiny\x00.en"}, {"engine": "faster\x00"}, {"language": "\x00"}):
        r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json=body)
        assert_error(r, 422)
    assert (await alice.get("/api/v1/transcriptions")).json()["total"] == 0


async def test_request_bodies_are_strict(alice: ApiUser) -> None:
    for path, body in [
        ("/api/v1/uploads", {"filename": "a.wav", "size": "1000"}),
        ("/api/v1/uploads", {"filename": "a.wav", "size": 1000.0}),
        ("/api/v1/uploads", {"filename": "a.wav", "size": True}),
        ("/api/v1/uploads", {"filename": 5, "size": 1000}),
        ("/api/v1/uploads", {"filename": "a.wav", "size": 1000, "sise": 1}),
        ("/api/v1/api-keys", {"name": 12}),
    ]:
        assert_error(await alice.post(path, json=body), 422, "validation_error")


async def test_transcription_options_are_strict(alice: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    for options in [
        {"beam_size": "5"},
        {"beam_size": 5.0},
        {"word_timestamps": "yes"},
        {"word_timestamps": 1},
        {"vad_filter": "true"},
        {"language": 1},
        {"mode": "mono", "unknown": True},
    ]:
        r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json=options)
        assert_error(r, 422, "validation_error")
        # The same options inside a download request are just as strict.
        r = await alice.post(
            "/api/v1/audio/downloads",
            json={"url": "https://example.com/a.mp3", "transcribe": options},
        )
        assert_error(r, 422, "validation_error")
    assert (await alice.get("/api/v1/jobs")).json()["total"] == 0
    assert (await alice.get("/api/v1/transcriptions")).json()["total"] == 0


async def test_well_typed_requests_still_pass(alice: ApiUser) -> None:
    r = await alice.post("/api/v1/uploads", json={"filename": "a.wav", "size": 1000})
    assert r.status_code == 201, r.text
    r = await alice.post("/api/v1/api-keys", json={"name": "laptop"})
    assert r.status_code == 201, r.text
    r = await alice.post("/api/v1/auth/login", json={"email": alice.email, "password": 12345678})
    assert_error(r, 422, "validation_error")


async def test_a_database_data_error_is_a_422_not_a_500(database_url: str) -> None:
    """The last resort for a field the checks above missed: PostgreSQL's (or psycopg's)
    refusal of the data is the client's input, answered 422 `invalid_input`."""
    engine = create_async_engine(to_sqlalchemy_url(database_url))
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/echo")
    async def echo(value: str) -> dict[str, object]:
        async with engine.connect() as conn:
            return {"value": await conn.scalar(text("SELECT CAST(:v AS text)"), {"v": value})}

    @app.get("/offset")
    async def offset(value: int) -> dict[str, object]:
        async with engine.connect() as conn:
            return {"value": await conn.scalar(text("SELECT 1 OFFSET :v"), {"v": value})}

    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/echo", params={"value": "ok"})).json() == {"value": "ok"}
            assert_error(
                await client.get("/echo", params={"value": "a\x00b"}), 422, "invalid_input"
            )
            assert_error(await client.get("/offset", params={"value": 2**63}), 422, "invalid_input")
    finally:
        await engine.dispose()
