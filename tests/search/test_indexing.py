"""Search indexing on the real PostgreSQL with the real embedding model: the job a completed
transcription queues, chunk rows (times, offsets, vectors, tsvector), cascades, atomic
replacement, the reindex command, and embedding-model changes."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, update

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from tests.search.test_chunking import long_sentences, whisper_like
from verbatim.config import Settings
from verbatim.models import (
    AudioFile,
    Job,
    JobStatus,
    JobType,
    Segment,
    SourceType,
    Transcription,
    TranscriptionChunk,
    TranscriptionStatus,
    User,
)
from verbatim.search.embedding import model_name
from verbatim.search.indexing import prepare, read_source, write_chunks
from verbatim.search.language import TS_CONFIGS
from verbatim.search.service import queue_index, transcriptions_to_reindex
from verbatim.services import get_services


async def chunks_of(transcription_id: uuid.UUID | str) -> list[TranscriptionChunk]:
    async with get_services().sessionmaker() as session:
        rows = await session.scalars(
            select(TranscriptionChunk)
            .where(TranscriptionChunk.transcription_id == uuid.UUID(str(transcription_id)))
            .order_by(TranscriptionChunk.chunk_index)
        )
        return list(rows)


async def index_job(transcription_id: uuid.UUID | str) -> Job | None:
    async with get_services().sessionmaker() as session:
        return await session.scalar(
            select(Job)
            .where(
                Job.transcription_id == uuid.UUID(str(transcription_id)),
                Job.type == JobType.search_index,
            )
            .order_by(Job.created_at.desc())
            .limit(1)
        )


async def wait_for_index(transcription_id: uuid.UUID | str, timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await index_job(transcription_id)
        if job is not None and job.status in (
            JobStatus.completed,
            JobStatus.failed,
            JobStatus.cancelled,
        ):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"no finished index job for {transcription_id}")


async def make_transcript(
    email: str, sentences: list[str], *, language: str = "en", speakers: Any = None
) -> uuid.UUID:
    """A completed transcription written straight to the database (no speech model), shaped
    like the engine's output."""
    body, segments = whisper_like(sentences, speakers=speakers)
    async with get_services().sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        audio = AudioFile(
            user_id=user.id,
            tenant_id=user.tenant_id,
            storage_key=f"test/{uuid.uuid4().hex}",
            original_filename="meeting.wav",
            size_bytes=1,
            sha256=uuid.uuid4().hex + uuid.uuid4().hex,
            mime_type="audio/wav",
            container="wav",
            codec="pcm_s16le",
            duration=segments[-1].end,
            has_video=False,
            source_type=SourceType.upload,
        )
        session.add(audio)
        await session.flush()
        transcription = Transcription(
            user_id=user.id,
            tenant_id=user.tenant_id,
            audio_file_id=audio.id,
            status=TranscriptionStatus.completed,
            language=language,
            engine="faster-whisper",
            model_name="tiny.en",
            options={},
            text=body,
        )
        session.add(transcription)
        await session.flush()
        session.add_all(
            Segment(
                transcription_id=transcription.id,
                index=i,
                start=s.start,
                end=s.end,
                text=s.text,
                speaker=s.speaker,
                words=list(s.words),
            )
            for i, s in enumerate(segments)
        )
        await session.commit()
        return transcription.id


async def index_here(transcription_id: uuid.UUID, settings: Settings) -> int | None:
    services = get_services()
    async with services.sessionmaker() as session:
        source = await read_source(session, transcription_id)
    prepared = await prepare(source, settings)
    async with services.sessionmaker() as session:
        written = await write_chunks(session, source, prepared)
        await session.commit()
    return written


@pytest.mark.slow
async def test_a_completed_transcription_is_indexed_with_times_and_offsets(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    audio = (await alice.upload(FIXTURES / "dialogue.wav")).json()
    r = await alice.post(f"/api/v1/audio/{audio['id']}/transcriptions", json={})
    assert r.status_code == 202, r.text
    started = r.json()
    job = await wait_for_job(alice, started["job_id"])
    assert job["status"] == "completed", job
    # The index job was committed with the completion: it exists as soon as that is visible.
    queued = await index_job(started["transcription_id"])
    assert queued is not None and queued.transcription_id is not None

    done = await wait_for_index(started["transcription_id"])
    assert done.status is JobStatus.completed, (done.error_code, done.error_message)
    seen = (await alice.get(f"/api/v1/jobs/{done.id}")).json()
    assert seen["type"] == "search_index" and seen["progress"] == 100.0
    assert (await bob.get(f"/api/v1/jobs/{done.id}")).status_code == 404

    t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
    chunks = await chunks_of(started["transcription_id"])
    async with get_services().sessionmaker() as session:
        owner = await session.scalar(select(User.id).where(User.email == alice.email))
    assert {c.user_id for c in chunks} == {owner}
    assert chunks and seen["detail"]["chunks"] == len(chunks)
    words = [w for s in t["segments"] for w in s["words"]]
    for chunk in chunks:
        assert t["text"][chunk.start_char_pos : chunk.end_char_pos] == chunk.text
        first_word, last_word = chunk.text.split()[0], chunk.text.split()[-1]
        assert any(
            w["word"].strip() == first_word and w["start"] == pytest.approx(chunk.start_time)
            for w in words
        )
        assert any(
            w["word"].strip() == last_word and w["end"] == pytest.approx(chunk.end_time)
            for w in words
        )
        assert chunk.embedding_model == model_name(settings)
        assert len(chunk.embedding) == 384
        assert math.isclose(math.fsum(x * x for x in chunk.embedding), 1.0, rel_tol=1e-3)
        assert chunk.ts_config == "english"
        assert chunk.keywords
    assert "".join(c.text for c in chunks).lower().count("meeting notes") >= 1

    # The generated tsvector is in English: "printing notes" finds "printed them ... notes".
    async with get_services().sessionmaker() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(TranscriptionChunk)
            .where(
                TranscriptionChunk.transcription_id == uuid.UUID(started["transcription_id"]),
                TranscriptionChunk.tsv.op("@@")(func.websearch_to_tsquery("english", "notes")),
            )
        )
    assert found and found >= 1

    # Chunks go with their transcription.
    r = await alice.delete(f"/api/v1/transcriptions/{started['transcription_id']}")
    assert r.status_code == 204
    assert await chunks_of(started["transcription_id"]) == []


@pytest.mark.slow
async def test_chunks_are_deleted_with_their_audio_file(alice: ApiUser, settings: Settings) -> None:
    tid = await make_transcript("alice@example.com", long_sentences(40))
    assert await index_here(tid, settings) == len(await chunks_of(tid)) >= 2
    async with get_services().sessionmaker() as session:
        transcription = await session.get(Transcription, tid)
        assert transcription is not None
        audio_id = transcription.audio_file_id
        await session.execute(AudioFile.__table__.delete().where(AudioFile.id == audio_id))
        await session.commit()
    assert await chunks_of(tid) == []
    async with get_services().sessionmaker() as session:
        left = await session.scalar(select(func.count()).select_from(TranscriptionChunk))
    assert left == 0


@pytest.mark.slow
async def test_queue_index_runs_the_job_and_replaces_chunks_atomically(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    mine = await make_transcript("alice@example.com", long_sentences(60))
    theirs = await make_transcript("bob@example.com", long_sentences(30))
    assert await index_here(theirs, settings)
    bob_before = [(c.id, c.created_at, c.text) for c in await chunks_of(theirs)]

    async with get_services().sessionmaker() as session:
        transcription = await session.get(Transcription, mine)
        assert transcription is not None
        job = await queue_index(session, transcription)
        again = await queue_index(session, transcription)  # still waiting: reused
        assert again.id == job.id
        await session.commit()
    done = await wait_for_index(mine)
    assert done.status is JobStatus.completed, (done.error_code, done.error_message)
    first = await chunks_of(mine)
    assert len(first) >= 4 and done.detail["chunks"] == len(first)
    assert {c.user_id for c in first} == {transcription.user_id}
    assert [c.chunk_index for c in first] == list(range(len(first)))

    # An edit between reading and writing: the stale result is not written.
    async with get_services().sessionmaker() as session:
        source = await read_source(session, mine)
    prepared = await prepare(source, settings)
    async with get_services().sessionmaker() as session:
        await session.execute(
            update(Transcription)
            .where(Transcription.id == mine)
            .values(text=Transcription.text + " Edited.")
        )
        await session.commit()
    async with get_services().sessionmaker() as session:
        assert await write_chunks(session, source, prepared) is None
        await session.commit()
    assert [c.id for c in await chunks_of(mine)] == [c.id for c in first]

    # Re-indexing replaces every row in one transaction: a reader never sees a mix.
    stop = asyncio.Event()
    seen_counts: set[int] = set()

    async def watch() -> None:
        while not stop.is_set():
            async with get_services().sessionmaker() as session:
                n = await session.scalar(
                    select(func.count())
                    .select_from(TranscriptionChunk)
                    .where(TranscriptionChunk.transcription_id == mine)
                )
            seen_counts.add(int(n or 0))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await index_here(mine, settings)
    stop.set()
    await watcher
    second = await chunks_of(mine)
    assert seen_counts <= {len(first), len(second)}
    assert second[-1].text.endswith("Edited.")
    assert {c.id for c in second}.isdisjoint({c.id for c in first})
    # Bob's rows were never touched.
    assert [(c.id, c.created_at, c.text) for c in await chunks_of(theirs)] == bob_before


async def test_a_job_for_a_transcription_that_is_not_completed_fails_with_a_code(
    alice: ApiUser,
) -> None:
    tid = await make_transcript("alice@example.com", long_sentences(5))
    async with get_services().sessionmaker() as session:
        transcription = await session.get(Transcription, tid)
        assert transcription is not None
        transcription.status = TranscriptionStatus.running
        await queue_index(session, transcription)
        await session.commit()
    done = await wait_for_index(tid)
    assert done.status is JobStatus.failed
    assert done.error_code == "transcription_not_completed"
    assert await chunks_of(tid) == []


async def test_model_change_is_detected_and_only_stale_rows_are_selected(
    alice: ApiUser, bob: ApiUser, settings: Settings
) -> None:
    current = model_name(settings)
    a = await make_transcript("alice@example.com", long_sentences(20))
    b = await make_transcript("bob@example.com", long_sentences(20))
    never = await make_transcript("bob@example.com", long_sentences(3))
    for tid in (a, b):
        await index_here(tid, settings)
    async with get_services().sessionmaker() as session:
        await session.execute(
            update(TranscriptionChunk)
            .where(TranscriptionChunk.transcription_id == a)
            .values(embedding_model="old-model-0123456789ab")
        )
        await session.commit()
        needed = await transcriptions_to_reindex(session, current)
        assert set(needed) == {a, never}  # other model; never indexed
        assert set(await transcriptions_to_reindex(session, current, everything=True)) == {
            a,
            b,
            never,
        }
        assert await transcriptions_to_reindex(session, current, transcription_id=b) == [b]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    return subprocess.run(
        [sys.executable, "-m", "verbatim.cli", *args],
        env={**base, "VERBATIM_LOG_JSON": "true", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
async def test_reindex_command_backfills_and_moves_to_the_configured_model(
    alice: ApiUser, bob: ApiUser, settings: Settings, tmp_path: Path
) -> None:
    a = await make_transcript("alice@example.com", long_sentences(30))
    b = await make_transcript("bob@example.com", long_sentences(30))
    await index_here(b, settings)
    bob_rows = [(c.id, c.created_at) for c in await chunks_of(b)]
    async with get_services().sessionmaker() as session:
        await session.execute(
            update(TranscriptionChunk)
            .where(TranscriptionChunk.transcription_id == b)
            .values(embedding_model="old-model-0123456789ab")
        )
        await session.commit()
    env = {
        "VERBATIM_DATABASE_URL": str(settings.database_url),
        "VERBATIM_DATA_DIR": str(tmp_path / "cli-data"),
        "VERBATIM_ENV": "test",
    }

    # Only bob's transcription, by id: alice's stays unindexed.
    r = await asyncio.to_thread(run_cli, "search", "reindex", "--transcription", str(b), env=env)
    assert r.returncode == 0, r.stderr
    assert "indexed 1 of 1 transcriptions" in r.stdout
    assert await chunks_of(a) == []
    after_b = await chunks_of(b)
    assert {c.embedding_model for c in after_b} == {model_name(settings)}
    assert not {c.id for c in after_b} & {i for i, _ in bob_rows}

    # Without options: what needs it (alice's backfill); bob's fresh rows are left alone.
    r = await asyncio.to_thread(run_cli, "search", "reindex", env=env)
    assert r.returncode == 0, r.stderr
    assert "indexed 1 of 1 transcriptions" in r.stdout and "chunks/s" in r.stdout
    assert len(await chunks_of(a)) >= 2
    assert [c.id for c in await chunks_of(b)] == [c.id for c in after_b]

    r = await asyncio.to_thread(run_cli, "search", "reindex", env=env)
    assert r.returncode == 0 and "indexed 0 of 0" in r.stdout

    r = await asyncio.to_thread(
        run_cli, "search", "reindex", "--transcription", str(uuid.uuid4()), env=env
    )
    assert r.returncode == 1 and "no completed transcription" in r.stderr
    r = await asyncio.to_thread(
        run_cli, "search", "reindex", "--all", "--transcription", str(b), env=env
    )
    assert r.returncode == 2

    # --queue leaves the work to the workers (this test's app runs one).
    r = await asyncio.to_thread(run_cli, "search", "reindex", "--all", "--queue", env=env)
    assert r.returncode == 0 and "queued 2 search.index jobs" in r.stdout, r.stdout + r.stderr
    for tid in (a, b):
        assert (await wait_for_index(tid)).status is JobStatus.completed


def test_every_language_configuration_exists_in_postgresql(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        names = {row[0] for row in conn.execute("SELECT cfgname FROM pg_ts_config")}
    assert set(TS_CONFIGS.values()) | {"simple"} <= names


def test_the_migration_builds_the_indexes_search_needs(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        indexes = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'transcription_chunk'"
            ).fetchall()
        )
        extension = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert extension.fetchone() is not None
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["ix_transcription_chunk_embedding"]
    assert "USING gin (tsv)" in indexes["ix_transcription_chunk_tsv"]
    assert "UNIQUE" in indexes["uq_transcription_chunk_transcription_index"]
