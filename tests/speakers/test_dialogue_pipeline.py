"""Dialogue mode end to end on the real models (tiny.en, Silero VAD, CAM++): a two-person
recording split into turns, a speaker named and her voice saved, her next recording labelled
by name, exports showing names; a silent file completes without speakers."""

from __future__ import annotations

import csv
import io
import itertools
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from verbatim.engines.base import DialogueOptions, EngineError, TranscribeOptions
from verbatim.engines.models import resolve_model
from verbatim.engines.process_pool import EnginePool


async def dialogue(user: ApiUser, path: Path, **options: Any) -> dict[str, Any]:
    audio = (await user.upload(path)).json()
    r = await user.post(
        f"/api/v1/audio/{audio['id']}/transcriptions", json={"mode": "dialogue", **options}
    )
    assert r.status_code == 202, r.text
    job = await wait_for_job(user, r.json()["job_id"], timeout=120)
    assert job["status"] == "completed", job
    assert job["stage"] == "completed" and job["progress"] == 100.0
    t: dict[str, Any] = (
        await user.get(f"/api/v1/transcriptions/{r.json()['transcription_id']}")
    ).json()
    return t


DIALOGUES = FIXTURES / "dialogue"  # synthetic conversations with their scripts (README there)


def script(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DIALOGUES / f"{name}.json").read_text())
    return data


def word_speakers(t: dict[str, Any], name: str, collar: float = 0.25) -> list[tuple[str, str]]:
    """(label given, speaker in the script) for every word that falls inside exactly one
    scripted turn (with a collar), in order."""
    turns = script(name)["turns"]
    pairs = []
    for seg in t["segments"]:
        for w in seg["words"]:
            middle = (w["start"] + w["end"]) / 2
            owners = {
                turn["speaker"]
                for turn in turns
                if turn["start"] - collar <= middle <= turn["end"] + collar
            }
            if len(owners) == 1:
                pairs.append((seg["speaker"], owners.pop()))
    return pairs


def label_map(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Each label -> the scripted speaker most of its words belong to."""
    votes: dict[str, dict[str, int]] = {}
    for label, truth in pairs:
        votes.setdefault(label, {}).setdefault(truth, 0)
        votes[label][truth] += 1
    return {label: max(v, key=lambda k: v[k]) for label, v in votes.items()}


def clip_of(name: str, speaker: str, path: Path) -> Path:
    """The scripted turns of one speaker cut out of a fixture, as a mono WAV."""
    import av

    with av.open(str(DIALOGUES / f"{name}.ogg")) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        pcm = np.concatenate(
            [
                r.to_ndarray().reshape(-1)
                for frame in container.decode(audio=0)
                for r in resampler.resample(frame)
            ]
        )
    pieces = [
        pcm[int(turn["start"] * 16000) : int(turn["end"] * 16000)]
        for turn in script(name)["turns"]
        if turn["speaker"] == speaker
    ]
    gap = np.zeros(4000, dtype=np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.concatenate([x for p in pieces for x in (p, gap)]).tobytes())
    return path


@pytest.mark.slow
async def test_interview_turns_named_speaker_recognised_next_time(
    alice: ApiUser, bob: ApiUser, tmp_path: Path
) -> None:
    # two_interview: voices hibari (speaks first) and us_m3 take 14 turns of 1-4 s.
    t = await dialogue(alice, DIALOGUES / "two_interview.ogg")
    assert t["mode"] == "dialogue"
    assert [s["label"] for s in t["speakers"]] == ["SPEAKER_1", "SPEAKER_2"]
    pairs = word_speakers(t, "two_interview")
    mapping = label_map(pairs)
    assert mapping == {"SPEAKER_1": "hibari", "SPEAKER_2": "us_m3"}
    right = sum(mapping[label] == truth for label, truth in pairs)
    assert len(pairs) >= 80 and right / len(pairs) >= 0.95, (right, len(pairs))
    for seg in t["segments"]:  # words stay whole and inside their segment
        assert seg["words"], seg
        assert seg["start"] <= seg["words"][0]["start"] and seg["words"][-1]["end"] <= seg["end"]
    for sp in t["speakers"]:
        assert sp["has_voice"] and sp["display_name"] is None and sp["voice_profile_id"] is None
    scripted = {
        who: sum(
            turn["end"] - turn["start"]
            for turn in script("two_interview")["turns"]
            if turn["speaker"] == who
        )
        for who in ("hibari", "us_m3")
    }
    for sp in t["speakers"]:
        assert abs(sp["talk_time"] - scripted[mapping[sp["label"]]]) < 3.0, (sp, scripted)
    assert sum(sp["word_count"] for sp in t["speakers"]) == t["word_count"]
    assert t["quality"]["speakers"] == 2
    assert t["quality"]["diarization"]["method"] == "clustering"

    # Name the first voice and save it.
    r = await alice.client.patch(
        f"/api/v1/transcriptions/{t['id']}/speakers/SPEAKER_1",
        json={"display_name": "Alice", "save_voice": True},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    profile_id = r.json()["voice_profile_id"]
    profiles = (await alice.get("/api/v1/voice-profiles")).json()["items"]
    assert [(p["id"], p["name"]) for p in profiles] == [(profile_id, "Alice")]

    # Exports show the name.
    base = f"/api/v1/transcriptions/{t['id']}/export"
    txt = (await alice.get(base, params={"format": "txt"})).text
    lines = txt.splitlines()
    assert lines[0] == "Alice: Thanks for coming in today."
    names = [line.split(":", 1)[0] for line in lines]
    assert set(names) == {"Alice", "SPEAKER_2"}
    assert all(a != b for a, b in itertools.pairwise(names)), txt  # one line a turn
    srt = (await alice.get(base, params={"format": "srt"})).text
    assert "Alice: Thanks for coming in today." in srt and "SPEAKER_2: " in srt
    vtt = (await alice.get(base, params={"format": "vtt"})).text
    assert "<v Alice>Thanks for coming in today." in vtt and "<v SPEAKER_2>" in vtt
    rows = list(csv.reader(io.StringIO((await alice.get(base, params={"format": "csv"})).text)))
    assert rows[0][2] == "speaker" and {row[2] for row in rows[1:]} == {"Alice", "SPEAKER_2"}
    data = json.loads((await alice.get(base, params={"format": "json"})).text)
    assert [(s["label"], s["name"]) for s in data["speakers"]] == [
        ("SPEAKER_1", "Alice"),
        ("SPEAKER_2", "SPEAKER_2"),
    ]
    assert all(s["talk_time"] > 5 for s in data["speakers"])
    assert {s["speaker"] for s in data["segments"]} == {"Alice", "SPEAKER_2"}
    r = await alice.get(base, params={"format": "docx"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    from docx import Document

    paragraphs = [p.text for p in Document(io.BytesIO(r.content)).paragraphs]
    heads = [p.split("\n", 1)[0] for p in paragraphs if p.startswith("[")]
    assert heads[0] == "[00:00:00] Alice" and len(heads) == len(lines)
    assert [h.split("] ", 1)[1] for h in heads] == names

    # Her next interview (another voice, pink noise at 15 dB) names her, with a confidence.
    nxt = await dialogue(alice, DIALOGUES / "two_noisy_15db.ogg")
    mapping = label_map(word_speakers(nxt, "two_noisy_15db"))
    assert sorted(mapping.values()) == ["hibari", "klatt"]
    named = {mapping[s["label"]]: s for s in nxt["speakers"]}
    assert named["hibari"]["name"] == "Alice"
    assert named["hibari"]["voice_profile_id"] == profile_id
    assert 0.63 <= named["hibari"]["match_confidence"] <= 1.0
    assert named["klatt"]["display_name"] is None and named["klatt"]["voice_profile_id"] is None
    hers = [s["text"] for s in nxt["segments"] if s["speaker_name"] == "Alice"]
    assert any("cheaper than" in text for text in hers), hers
    txt = (await alice.get(f"/api/v1/transcriptions/{nxt['id']}/export?format=txt")).text
    assert "\nAlice: " in txt

    # Profiles are per user: her voice is anonymous for Bob.
    theirs = await dialogue(bob, clip_of("two_interview", "hibari", tmp_path / "hers.wav"))
    assert [(s["label"], s["name"]) for s in theirs["speakers"]] == [("SPEAKER_1", "SPEAKER_1")]
    assert theirs["speakers"][0]["voice_profile_id"] is None


@pytest.mark.slow
async def test_silent_file_completes_without_speakers(alice: ApiUser, tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        noise = np.random.default_rng(0).normal(0, 3, 16000 * 3).astype(np.int16)
        out.writeframes(noise.tobytes())
    t = await dialogue(alice, path)
    assert t["status"] == "completed"
    assert t["speakers"] == []
    assert all(s["speaker"] is None for s in t["segments"])
    assert t["quality"]["speakers"] == 0


def _pcm(name: str) -> np.ndarray:
    with wave.open(str(FIXTURES / name)) as f:
        assert f.getframerate() == 16000 and f.getnchannels() == 1
        return np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)


@pytest.mark.slow
async def test_stereo_call_is_labelled_by_channel(alice: ApiUser, tmp_path: Path) -> None:
    """One speaker per channel, taking turns: found without being asked, exact by channel."""
    left, right = _pcm("speech.wav"), _pcm("speech2.wav")
    gap = np.zeros(8000, dtype=np.int16)
    n = len(left) + len(gap) + len(right)
    channels = np.zeros((2, n), dtype=np.int16)
    channels[0, : len(left)] = left
    channels[1, len(left) + len(gap) :] = right
    path = tmp_path / "call.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(channels.T.copy().tobytes())
    t = await dialogue(alice, path)
    assert t["quality"]["diarization"]["method"] == "channels"
    turns = [(s["speaker"], s["text"].lower()) for s in t["segments"]]
    assert {label for label, _ in turns} == {"SPEAKER_1", "SPEAKER_2"}, turns
    said = {label: " ".join(x for lbl, x in turns if lbl == label) for label, _ in turns}
    assert "brown fox" in said["SPEAKER_1"] and "second test" in said["SPEAKER_2"]
    assert "brown" not in said["SPEAKER_2"] and "second" not in said["SPEAKER_1"]


@pytest.mark.slow
async def test_engine_process_reports_stages_and_refuses_channels_on_mono(
    engine_pool: EnginePool,
) -> None:
    """Dialogue runs in the pool's engine process: progress moves from transcribing to
    diarizing; a mono file asked to split by channel is refused there, and the process lives."""
    model = resolve_model("tiny.en", None)
    seen: list[tuple[float, str]] = []

    async def progress(done: float, total: float, stage: str) -> None:
        seen.append((done / total, stage))

    options = TranscribeOptions(word_timestamps=False, dialogue=DialogueOptions(num_speakers=2))
    async with engine_pool.acquire() as engine:
        result = await engine.transcribe(model, str(FIXTURES / "dialogue.wav"), options, progress)
        with pytest.raises(EngineError) as refused:
            await engine.transcribe(
                model,
                str(FIXTURES / "speech.wav"),
                TranscribeOptions(dialogue=DialogueOptions(method="channels")),
            )
        assert refused.value.code == "channels_need_stereo" and not refused.value.transient
        assert engine.alive()
    stages = [stage for _, stage in seen]
    assert stages[-1] == "diarizing" and "transcribing" in stages
    assert stages.index("diarizing") > stages.index("transcribing")
    assert [fraction for fraction, _ in seen] == sorted(fraction for fraction, _ in seen)
    assert [s.label for s in result.speakers] == ["SPEAKER_1", "SPEAKER_2"]
    assert all(len(s.centroid or ()) == 192 for s in result.speakers)
    # Word timings were used for labelling, then dropped as asked.
    assert all(seg.words == () and seg.speaker for seg in result.segments)
    assert result.diarization is not None and result.diarization["seconds"] > 0
