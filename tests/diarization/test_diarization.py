"""Dialogue mode's diarization on the real models (Silero VAD + CAM++ ONNX) and real fixtures.

The fixtures in tests/fixtures/dialogue are synthetic conversations with exact references
(scripts/dialogue_fixtures.py); scoring here is frame accuracy on a 10 ms grid over the
reference speech, outside a 0.25 s collar around every reference boundary, after mapping each
found label to the reference speaker it overlaps most.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from verbatim.diarization import (
    EMBEDDING_DIM,
    DiarizationInputError,
    DiarizationResult,
    diarize,
    is_stereo_per_channel,
    model_path,
)
from verbatim.diarization.audio import load_audio

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DIALOGUE = FIXTURES / "dialogue"
STEP = 0.01
COLLAR = 0.25


@cache
def clip(name: str, seconds: float | None = None) -> np.ndarray:
    return load_audio(DIALOGUE / f"{name}.ogg", max_seconds=seconds)


def reference(name: str, seconds: float | None = None) -> list[tuple[float, float, str, int]]:
    meta: dict[str, Any] = json.loads((DIALOGUE / f"{name}.json").read_text())
    out = []
    for turn in meta["turns"]:
        for s, e in turn["speech"]:
            if seconds is None or s < seconds:
                out.append((s, min(e, seconds or e), turn["speaker"], turn["channel"]))
    return out


def score(
    result: DiarizationResult, ref: list[tuple[float, float, str, int]], duration: float
) -> tuple[float, float, dict[str, str]]:
    """(accuracy on reference speech, hypothesis speech outside it / reference speech, mapping)."""
    n = int(duration / STEP) + 1
    truth = np.full(n, "", dtype=object)
    near_edge = np.zeros(n, dtype=bool)
    for s, e, speaker, _ in ref:
        truth[int(s / STEP) : int(e / STEP)] = speaker
        for edge in (s, e):
            near_edge[max(0, int((edge - COLLAR) / STEP)) : int((edge + COLLAR) / STEP)] = True
    hyp = np.full(n, "", dtype=object)
    for turn in result.turns:
        hyp[int(turn.start / STEP) : int(turn.end / STEP)] = turn.label
    mapping: dict[str, str] = {}
    for label in result.labels:
        overlap = Counter(truth[(hyp == label) & (truth != "")])
        mapping[label] = overlap.most_common(1)[0][0] if overlap else ""
    scored = (truth != "") & ~near_edge
    mapped = np.array([mapping.get(h, "") for h in hyp], dtype=object)
    accuracy = float((mapped[scored] == truth[scored]).mean())
    false_alarm = float(((hyp != "") & (truth == "") & ~near_edge).sum() / max(1, scored.sum()))
    return accuracy, false_alarm, mapping


def test_model_is_packaged() -> None:
    path = model_path()
    assert path.is_file()
    assert 25e6 < path.stat().st_size < 32e6
    assert (path.parent / "NOTICE").read_text().count("Apache License") >= 1


@pytest.mark.slow
def test_two_speakers_found_with_turns_near_the_reference() -> None:
    audio, ref = clip("two_interview", 20.0), reference("two_interview", 20.0)
    result = diarize(audio)
    assert result.method_used == "clustering"
    assert result.labels == ["SPEAKER_1", "SPEAKER_2"]
    accuracy, false_alarm, mapping = score(result, ref, audio.shape[1] / 16_000)
    assert accuracy >= 0.95, (accuracy, result.turns)
    assert false_alarm <= 0.05
    assert sorted(mapping.values()) == ["hibari", "us_m3"]  # one label per voice
    # Every reference change of speaker has a hypothesis change within 0.5 s.
    changes = [b[0] for a, b in itertools.pairwise(ref) if a[2] != b[2]]
    found = [
        b.start for a, b in zip(result.turns, result.turns[1:], strict=False) if a.label != b.label
    ]
    assert len(found) == len(changes)
    assert all(min(abs(c - f) for f in found) < 0.5 for c in changes)
    for label, centroid in result.centroids.items():
        assert label in result.labels
        assert centroid.shape == (EMBEDDING_DIM,) and centroid.dtype == np.float32
        assert abs(float(np.linalg.norm(centroid)) - 1.0) < 1e-4


@pytest.mark.slow
def test_one_speaker_gives_one_and_silence_none() -> None:
    audio = clip("one_speaker", 15.0)
    result = diarize(audio)
    assert result.labels == ["SPEAKER_1"]
    accuracy, false_alarm, _ = score(result, reference("one_speaker", 15.0), 15.0)
    assert accuracy >= 0.95 and false_alarm <= 0.05
    assert list(result.centroids) == ["SPEAKER_1"]

    silent = diarize(np.zeros((1, 5 * 16_000), dtype=np.float32))
    assert silent.turns == [] and silent.centroids == {} and silent.num_speakers == 0
    empty = diarize(np.zeros((2, 0), dtype=np.float32))
    assert empty.turns == []


@pytest.mark.slow
def test_speaker_count_overrides_are_respected() -> None:
    audio = clip("two_interview", 12.0)
    assert diarize(audio).num_speakers == 2
    assert diarize(audio, num_speakers=1).labels == ["SPEAKER_1"]
    assert diarize(audio, max_speakers=1).num_speakers == 1
    assert diarize(audio, num_speakers=3).num_speakers == 3
    assert diarize(audio, min_speakers=3, max_speakers=4).num_speakers == 3
    one = clip("one_speaker", 10.0)
    assert diarize(one, num_speakers=2).num_speakers == 2


@pytest.mark.slow
def test_stereo_call_is_labelled_by_channel_exactly() -> None:
    audio, ref = clip("stereo_call"), reference("stereo_call")
    assert audio.shape[0] == 2
    assert is_stereo_per_channel(audio)
    result = diarize(audio, method="channels")
    assert result.method_used == "channels"
    assert result.labels[0] == "SPEAKER_1" and sorted(result.labels) == ["SPEAKER_1", "SPEAKER_2"]
    # Channel n is SPEAKER_{n+1}: score with the channel as the reference speaker.
    by_channel = [(s, e, f"SPEAKER_{ch + 1}", ch) for s, e, _, ch in ref]
    accuracy, false_alarm, mapping = score(result, by_channel, audio.shape[1] / 16_000)
    assert mapping == {"SPEAKER_1": "SPEAKER_1", "SPEAKER_2": "SPEAKER_2"}
    assert accuracy >= 0.99 and false_alarm <= 0.02
    # Overlapping speech (two places in the call) is kept for both speakers.
    overlaps = sum(
        1
        for a in result.turns
        for b in result.turns
        if a.label < b.label and min(a.end, b.end) - max(a.start, b.start) > 0.2
    )
    assert overlaps >= 2
    assert diarize(audio).method_used == "channels"  # auto detects it


def test_mono_or_panned_stereo_is_not_per_channel() -> None:
    mono = load_audio(FIXTURES / "dialogue.wav")
    assert not is_stereo_per_channel(mono)
    assert not is_stereo_per_channel(np.concatenate([mono, mono]))
    panned = load_audio(FIXTURES / "speech_stereo.wav")  # same speech, right at 0.7
    assert panned.shape[0] == 2 and not is_stereo_per_channel(panned)
    assert not is_stereo_per_channel(np.zeros((2, 32_000), dtype=np.float32))


@pytest.mark.slow
def test_same_voice_has_close_centroids_across_recordings() -> None:
    """What voice profiles rely on: a voice's centroid matches the same voice elsewhere."""
    first = diarize(clip("two_interview", 20.0))
    second = diarize(clip("three_meeting", 25.0))
    r1, r2 = reference("two_interview", 20.0), reference("three_meeting", 25.0)
    _, _, map1 = score(first, r1, 20.0)
    _, _, map2 = score(second, r2, 25.0)
    hibari1 = next(first.centroids[k] for k, v in map1.items() if v == "hibari")
    hibari2 = next(second.centroids[k] for k, v in map2.items() if v == "hibari")
    others = [second.centroids[k] for k, v in map2.items() if v != "hibari"]
    same = float(hibari1 @ hibari2)
    assert same > 0.7
    assert all(float(hibari1 @ o) < same - 0.3 for o in others)


@pytest.mark.parametrize(
    ("audio", "code"),
    [
        ([[0.0] * 100], "audio_not_array"),
        (np.zeros((1, 16_000), dtype=np.float64), "audio_bad_dtype"),
        (np.zeros((1, 16_000), dtype=np.int16), "audio_bad_dtype"),
        (np.zeros(16_000, dtype=np.float32), "audio_bad_shape"),
        (np.zeros((1, 2, 16_000), dtype=np.float32), "audio_bad_shape"),
        (np.zeros((16_000, 2), dtype=np.float32), "audio_bad_shape"),
        (np.zeros((0, 16_000), dtype=np.float32), "audio_bad_shape"),
        (np.full((1, 16_000), np.nan, dtype=np.float32), "audio_not_finite"),
    ],
)
def test_bad_arrays_are_refused(audio: Any, code: str) -> None:
    with pytest.raises(DiarizationInputError) as err:
        diarize(audio)
    assert err.value.code == code
    if isinstance(audio, np.ndarray) and audio.dtype == np.float32:
        with pytest.raises(DiarizationInputError):
            is_stereo_per_channel(audio)


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"num_speakers": 0}, "speaker_count_invalid"),
        ({"num_speakers": 21}, "speaker_count_invalid"),
        ({"num_speakers": True}, "speaker_count_invalid"),
        ({"max_speakers": 2.0}, "speaker_count_invalid"),
        ({"min_speakers": 3, "max_speakers": 2}, "speaker_count_invalid"),
        ({"num_speakers": 4, "max_speakers": 3}, "speaker_count_invalid"),
        ({"method": "channels"}, "channels_need_stereo"),
        ({"method": "pyannote"}, "diarization_method_invalid"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], code: str) -> None:
    with pytest.raises(DiarizationInputError) as err:
        diarize(np.zeros((1, 16_000), dtype=np.float32), **options)
    assert err.value.code == code
