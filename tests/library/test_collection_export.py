"""Exporting a collection: a `collection_export` job on the lifecycle builds a zip of the chosen
formats from a real transcript; only its owner downloads it."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile

import pytest
from sqlalchemy import select

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from tests.library.helpers import make_transcription, user_row
from verbatim.models import Job, JobType, TranscriptionStatus
from verbatim.services import get_services

API = "/api/v1/collections"


@pytest.mark.slow
async def test_export_zip_in_order_with_manifest_owner_only(alice: ApiUser, bob: ApiUser) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
    started = r.json()
    assert (await wait_for_job(alice, started["job_id"]))["status"] == "completed"
    spoken = str(started["transcription_id"])
    written = await make_transcription(
        alice,
        "Notes",
        segments=[(0.0, 2.5, "Moving the delivery to March."), (2.5, 4.0, "Agreed.")],
    )
    pending = await make_transcription(alice, "Later", status=TranscriptionStatus.pending)

    r = await alice.post(API, json={"name": "Réunions 2026"})
    cid = r.json()["id"]
    for tid in (written, pending, spoken):
        assert (
            await alice.post(f"{API}/{cid}/items", json={"transcription_id": tid})
        ).status_code == 201
    r = await alice.post(f"{API}/{cid}/items/{spoken}/move", json={"before": written})
    assert r.status_code == 200

    r = await alice.post(f"{API}/{cid}/exports", json={"formats": ["SRT", "txt", "srt"]})
    assert r.status_code == 202, r.text
    started_export = r.json()
    url = started_export["download_url"]
    assert url == f"{API}/{cid}/exports/{started_export['job_id']}"
    job = await wait_for_job(alice, started_export["job_id"])
    assert job["status"] == "completed", job
    assert job["type"] == "collection_export"
    detail = job["detail"]
    assert detail["transcriptions"] == 2
    assert detail["formats"] == ["srt", "txt"]
    assert detail["filename"] == "Reunions_2026.zip"
    assert [s["transcription_id"] for s in detail["skipped"]] == [pending]
    assert "export_key" not in job["detail"]

    r = await alice.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert 'filename="Reunions_2026.zip"' in r.headers["content-disposition"]
    assert int(r.headers["content-length"]) == detail["size_bytes"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = archive.namelist()
    assert names == [
        "001_speech.srt",
        "001_speech.txt",
        "002_Notes.srt",
        "002_Notes.txt",
        "manifest.json",
    ]
    assert "quick brown fox" in archive.read("001_speech.txt").decode().lower()
    srt = archive.read("002_Notes.srt").decode()
    assert "00:00:00,000 --> 00:00:02,500" in srt and "Moving the delivery to March." in srt
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["collection"]["name"] == "Réunions 2026"
    assert [i["transcription_id"] for i in manifest["items"]] == [spoken, written]
    assert manifest["skipped"] == [
        {"transcription_id": pending, "title": "Later", "status": "pending"}
    ]

    # Owner only; another collection's path does not reach it either.
    r = await bob.get(url)
    assert r.status_code == 404 and r.json()["error"]["code"] == "export_not_found"
    other = (await alice.post(API, json={"name": "other"})).json()["id"]
    r = await alice.get(f"{API}/{other}/exports/{started_export['job_id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "export_not_found"
    # Another user's job of another type is not an export.
    r = await alice.get(f"{API}/{cid}/exports/{started['job_id']}")
    assert r.status_code == 404

    # Once housekeeping removed the object: 410.
    async with get_services().sessionmaker() as session:
        export_job = await session.get(Job, uuid.UUID(started_export["job_id"]))
        assert export_job is not None
        key = export_job.payload["export_key"]
    owner = await user_row(alice)
    assert key.startswith(f"exports/user_{owner.id}/collections/")
    await asyncio.to_thread(get_services().storage.delete, key)
    r = await alice.get(url)
    assert r.status_code == 410 and r.json()["error"]["code"] == "export_expired"


async def test_export_not_ready_is_409(alice: ApiUser) -> None:
    tid = await make_transcription(alice, "a")
    cid = (await alice.post(API, json={"name": "c"})).json()["id"]
    await alice.post(f"{API}/{cid}/items", json={"transcription_id": tid})
    owner = await user_row(alice)
    async with get_services().sessionmaker() as session, session.begin():
        job = Job(
            user_id=owner.id,
            tenant_id=owner.tenant_id,
            type=JobType.collection_export,
            payload={"collection_id": cid, "formats": ["txt"]},
        )
        session.add(job)  # never queued: stays pending
        await session.flush()
        job_id = job.id
    r = await alice.get(f"{API}/{cid}/exports/{job_id}")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "export_not_ready"
    assert r.json()["error"]["details"]["status"] == "pending"
    async with get_services().sessionmaker() as session:
        assert (await session.scalar(select(Job.status).where(Job.id == job_id))) == "pending"
