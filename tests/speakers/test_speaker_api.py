"""Dialogue options, speakers and voice profiles through HTTP, without running a model:
refusals (a clear 422 or 404 with a stable code, nothing stored) and ownership."""

from __future__ import annotations

import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import FIXTURES, ApiUser
from tests.speakers.helpers import add_dialogue, unit
from verbatim.models import Job, Speaker, Transcription, VoiceProfile
from verbatim.services import get_services


async def counts() -> dict[str, int]:
    async with get_services().sessionmaker() as session:
        return {
            model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Transcription, Job, Speaker, VoiceProfile)
        }


async def seed_dialogue(user: ApiUser) -> str:
    """A completed dialogue transcription with two speakers, written as the worker would."""
    audio = (await user.upload(FIXTURES / "dialogue.wav")).json()
    me = (await user.get("/api/v1/auth/me")).json()
    tid = uuid.uuid4()
    async with get_services().sessionmaker() as session:
        await add_dialogue(
            session,
            tid,
            user_id=uuid.UUID(me["id"]),
            tenant_id=uuid.UUID(me["tenant_id"]),
            audio_file_id=uuid.UUID(audio["id"]),
        )
        await session.commit()
    return str(tid)


def error_code(r: Any) -> str:
    code: str = r.json()["error"]["code"]
    return code


def stereo_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        t = np.arange(16000) / 16000
        tone = (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)
        out.writeframes(np.stack([tone, tone // 2], axis=1).tobytes())
    return path


@pytest.mark.slow  # queues (and cancels) two jobs on a warm engine
async def test_bad_dialogue_options_are_refused_and_store_nothing(
    alice: ApiUser, tmp_path: Path
) -> None:
    audio = (await alice.upload(FIXTURES / "speech.wav")).json()
    assert audio["channels"] == 1
    url = f"/api/v1/audio/{audio['id']}/transcriptions"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mode": "dialogue", "num_speakers": 0}, "validation_error"),
        ({"mode": "dialogue", "num_speakers": 21}, "validation_error"),
        ({"mode": "dialogue", "num_speakers": "2"}, "validation_error"),
        ({"mode": "dialogue", "min_speakers": -1}, "validation_error"),
        ({"mode": "dialogue", "max_speakers": 100}, "validation_error"),
        ({"mode": "dialogue", "min_speakers": 3, "max_speakers": 2}, "speaker_range_invalid"),
        ({"mode": "dialogue", "num_speakers": 5, "max_speakers": 3}, "speaker_range_invalid"),
        ({"mode": "dialogue", "num_speakers": 1, "min_speakers": 2}, "speaker_range_invalid"),
        ({"mode": "dialogue", "diarization": "off", "num_speakers": 2}, "speaker_range_invalid"),
        ({"mode": "dialogue", "diarization": "voices"}, "validation_error"),
        ({"mode": "dialogue", "diarization": "channels"}, "channels_need_stereo"),
        ({"num_speakers": 2}, "dialogue_options_need_dialogue_mode"),
        ({"mode": "mono", "diarization": "channels"}, "dialogue_options_need_dialogue_mode"),
        ({"mode": "dialogue", "engine": "whisper.cpp"}, "engine_unavailable"),
    ]
    for body, code in cases:
        r = await alice.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert error_code(r) == code, (body, r.text)
    # The same checks guard a download that would transcribe on arrival.
    r = await alice.post(
        "/api/v1/audio/downloads",
        json={
            "url": "https://example.com/a.mp3",
            "transcribe": {"mode": "dialogue", "min_speakers": 4, "max_speakers": 2},
        },
    )
    assert r.status_code == 422 and error_code(r) == "speaker_range_invalid", r.text
    assert await counts() == {"Transcription": 0, "Job": 0, "Speaker": 0, "VoiceProfile": 0}

    # A stereo file may ask for channels; options are stored as given.
    stereo = (await alice.upload(stereo_wav(tmp_path / "call.wav"))).json()
    assert stereo["channels"] == 2
    r = await alice.post(
        f"/api/v1/audio/{stereo['id']}/transcriptions",
        json={"mode": "dialogue", "diarization": "channels"},
    )
    assert r.status_code == 202, r.text
    assert (await alice.post(f"/api/v1/jobs/{r.json()['job_id']}/cancel")).status_code == 200
    t = (await alice.get(f"/api/v1/transcriptions/{r.json()['transcription_id']}")).json()
    assert t["mode"] == "dialogue"
    assert t["options"]["diarization"] == "channels"
    r = await alice.post(
        url, json={"mode": "dialogue", "min_speakers": 2, "max_speakers": 3, "num_speakers": 2}
    )
    assert r.status_code == 202, r.text
    assert (await alice.post(f"/api/v1/jobs/{r.json()['job_id']}/cancel")).status_code == 200
    t = (await alice.get(f"/api/v1/transcriptions/{r.json()['transcription_id']}")).json()
    assert t["options"] == {
        "word_timestamps": True,
        "vad_filter": False,
        "beam_size": 5,
        "diarization": "auto",
        "num_speakers": 2,
        "min_speakers": 2,
        "max_speakers": 3,
    }


async def test_rename_merge_and_their_refusals(alice: ApiUser) -> None:
    tid = await seed_dialogue(alice)
    base = f"/api/v1/transcriptions/{tid}/speakers"
    listed = (await alice.get(base)).json()["items"]
    assert [(s["label"], s["name"], s["talk_time"], s["has_voice"]) for s in listed] == [
        ("SPEAKER_1", "SPEAKER_1", 2.0, True),
        ("SPEAKER_2", "SPEAKER_2", 1.0, True),
    ]
    before = await counts()
    for body, status, code in [
        ({"display_name": ""}, 422, "validation_error"),
        ({"display_name": "   "}, 422, "validation_error"),
        ({"display_name": "x" * 201}, 422, "validation_error"),
        ({"display_name": "Al\x00ice"}, 422, "validation_error"),
        ({"display_name": None, "save_voice": True}, 422, "voice_name_required"),
        ({"display_name": "Alice", "save_voice": "yes"}, 422, "validation_error"),
        ({"name": "Alice"}, 422, "validation_error"),
    ]:
        r = await alice.client.patch(f"{base}/SPEAKER_1", json=body, headers=alice.headers)
        assert r.status_code == status, (body, r.text)
        assert error_code(r) == code, (body, r.text)
    r = await alice.client.patch(
        f"{base}/SPEAKER_9", json={"display_name": "Zed"}, headers=alice.headers
    )
    assert r.status_code == 404 and error_code(r) == "speaker_not_found"
    for body, status, code in [
        ({"into": "SPEAKER_1"}, 422, "speaker_merge_self"),
        ({"into": "SPEAKER_7"}, 422, "merge_target_not_found"),
        ({"into": ""}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ]:
        r = await alice.post(f"{base}/SPEAKER_1/merge", json=body)
        assert r.status_code == status, (body, r.text)
        assert error_code(r) == code, (body, r.text)
    r = await alice.post(f"{base}/SPEAKER_9/merge", json={"into": "SPEAKER_1"})
    assert r.status_code == 404 and error_code(r) == "speaker_not_found"
    assert await counts() == before
    assert (await alice.get(base)).json()["items"] == listed

    # Rename without saving: no profile.
    r = await alice.client.patch(
        f"{base}/SPEAKER_2", json={"display_name": "  Bob   Smith "}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Bob Smith" and r.json()["voice_profile_id"] is None
    assert (await counts())["VoiceProfile"] == 0
    t = (await alice.get(f"/api/v1/transcriptions/{tid}")).json()
    assert [s["speaker_name"] for s in t["segments"]] == ["SPEAKER_1", "Bob Smith", "SPEAKER_1"]
    assert [s["speaker"] for s in t["segments"]] == ["SPEAKER_1", "SPEAKER_2", "SPEAKER_1"]
    assert [s["name"] for s in t["speakers"]] == ["SPEAKER_1", "Bob Smith"]

    # Merge SPEAKER_2 into SPEAKER_1: segments, talk time and words move over.
    r = await alice.post(f"{base}/SPEAKER_2/merge", json={"into": "SPEAKER_1"})
    assert r.status_code == 200, r.text
    merged = r.json()["items"]
    assert [(s["label"], s["talk_time"], s["word_count"]) for s in merged] == [
        ("SPEAKER_1", 3.0, 6)
    ]
    segments = (await alice.get(f"/api/v1/transcriptions/{tid}/segments")).json()["items"]
    assert {s["speaker"] for s in segments} == {"SPEAKER_1"}
    async with get_services().sessionmaker() as session:
        centroid = await session.scalar(
            select(Speaker.centroid).where(Speaker.label == "SPEAKER_1")
        )
    assert abs(float(np.linalg.norm(centroid)) - 1.0) < 1e-4
    txt = (await alice.get(f"/api/v1/transcriptions/{tid}/export?format=txt")).text
    assert txt == "SPEAKER_1: Hello there. Hi. How are you?\n"


async def test_voice_profiles_save_rename_delete(alice: ApiUser) -> None:
    tid = await seed_dialogue(alice)
    base = f"/api/v1/transcriptions/{tid}/speakers"
    r = await alice.client.patch(
        f"{base}/SPEAKER_1",
        json={"display_name": "Alice", "save_voice": True},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    profile_id = r.json()["voice_profile_id"]
    assert profile_id and r.json()["name"] == "Alice"
    # Saving the same voice again does not count it twice.
    r = await alice.client.patch(
        f"{base}/SPEAKER_1",
        json={"display_name": "Alice", "save_voice": True},
        headers=alice.headers,
    )
    assert r.json()["voice_profile_id"] == profile_id
    # Another voice saved under the same name joins the profile.
    r = await alice.client.patch(
        f"{base}/SPEAKER_2",
        json={"display_name": "Alice", "save_voice": True},
        headers=alice.headers,
    )
    assert r.json()["voice_profile_id"] == profile_id
    page = (await alice.get("/api/v1/voice-profiles")).json()
    assert page["total"] == 1
    assert page["items"][0]["name"] == "Alice" and page["items"][0]["samples"] == 2
    async with get_services().sessionmaker() as session:
        stored = await session.scalar(select(VoiceProfile.centroid))
    assert abs(float(np.linalg.norm(stored)) - 1.0) < 1e-4
    expected = np.asarray(unit(1)) + np.asarray(unit(2))
    assert float(np.dot(stored, expected / np.linalg.norm(expected))) > 0.999

    # Renaming the profile renames the speakers it named.
    url = f"/api/v1/voice-profiles/{profile_id}"
    r = await alice.client.patch(url, json={"name": "Alice Martin"}, headers=alice.headers)
    assert r.status_code == 200 and r.json()["name"] == "Alice Martin"
    assert {s["name"] for s in (await alice.get(base)).json()["items"]} == {"Alice Martin"}
    # Bad input, conflicts.
    r = await alice.client.patch(
        f"{base}/SPEAKER_2",
        json={"display_name": "Carol", "save_voice": True},
        headers=alice.headers,
    )
    carol = r.json()["voice_profile_id"]
    assert carol != profile_id
    before = await counts()
    for body, status, code in [
        ({"name": "Carol"}, 409, "voice_profile_exists"),
        ({"name": ""}, 422, "validation_error"),
        ({"name": 5}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ]:
        r = await alice.client.patch(url, json=body, headers=alice.headers)
        assert r.status_code == status, (body, r.text)
        assert error_code(r) == code
    assert (await alice.get("/api/v1/voice-profiles/not-a-uuid")).status_code == 422
    missing = f"/api/v1/voice-profiles/{uuid.uuid4()}"
    r = await alice.get(missing)
    assert r.status_code == 404 and error_code(r) == "voice_profile_not_found"
    assert (await alice.delete(missing)).status_code == 404
    assert await counts() == before

    # Deleting the profile deletes its embedding; the speakers keep their names.
    assert (await alice.delete(url)).status_code == 204
    assert (await alice.get(url)).status_code == 404
    async with get_services().sessionmaker() as session:
        ids = list(await session.scalars(select(VoiceProfile.id)))
    assert [str(i) for i in ids] == [carol]
    speakers = (await alice.get(base)).json()["items"]
    assert speakers[0]["name"] == "Alice Martin" and speakers[0]["voice_profile_id"] is None


async def test_another_user_gets_404_on_speakers_and_voice_profiles(
    alice: ApiUser, bob: ApiUser
) -> None:
    tid = await seed_dialogue(alice)
    base = f"/api/v1/transcriptions/{tid}/speakers"
    r = await alice.client.patch(
        f"{base}/SPEAKER_1",
        json={"display_name": "Alice", "save_voice": True},
        headers=alice.headers,
    )
    profile = f"/api/v1/voice-profiles/{r.json()['voice_profile_id']}"
    before = await counts()
    answers = [
        await bob.get(base),
        await bob.client.patch(
            f"{base}/SPEAKER_1", json={"display_name": "X"}, headers=bob.headers
        ),
        await bob.post(f"{base}/SPEAKER_2/merge", json={"into": "SPEAKER_1"}),
        await bob.get(profile),
        await bob.client.patch(profile, json={"name": "Mine"}, headers=bob.headers),
        await bob.delete(profile),
    ]
    for r in answers:
        assert r.status_code == 404, r.text
        assert error_code(r) in ("transcription_not_found", "voice_profile_not_found")
    assert (await bob.get("/api/v1/voice-profiles")).json()["total"] == 0
    assert await counts() == before
    assert (await alice.get(profile)).json()["name"] == "Alice"
    assert [s["name"] for s in (await alice.get(base)).json()["items"]] == ["Alice", "SPEAKER_2"]
    # Bob saving a voice under the same name gets a profile of his own.
    bob_tid = await seed_dialogue(bob)
    r = await bob.client.patch(
        f"/api/v1/transcriptions/{bob_tid}/speakers/SPEAKER_1",
        json={"display_name": "Alice", "save_voice": True},
        headers=bob.headers,
    )
    assert r.status_code == 200
    assert f"/api/v1/voice-profiles/{r.json()['voice_profile_id']}" != profile
