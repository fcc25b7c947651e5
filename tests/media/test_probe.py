"""Probing: durations measured from the stream (never a header's claim), and libav isolated in
child processes so a crash on a hostile file costs one request, not the API."""

from __future__ import annotations

import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import FIXTURES, ApiUser
from tests.media import crashers
from verbatim.media import probe_pool
from verbatim.media.probe import MIN_DURATION_S, NotMedia, TooShort, probe
from verbatim.media.probe_pool import ProbePool


def write_wav(path: Path, seconds: float, rate: int = 16000) -> bytes:
    samples = (np.sin(np.arange(int(seconds * rate)) / 8) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path.read_bytes()


def crafted_mp3(path: Path, seconds: float, claimed_frames: int) -> None:
    """An MP3 of `seconds` whose Xing/Info header claims `claimed_frames` frames."""
    mp3(path, seconds)
    data = bytearray(path.read_bytes())
    at = max(data.find(b"Xing"), data.find(b"Info"))
    assert at > 0, "libmp3lame writes a Xing/Info header"
    (flags,) = struct.unpack(">I", data[at + 4 : at + 8])
    assert flags & 1, "with a frame count"
    data[at + 8 : at + 12] = struct.pack(">I", claimed_frames)
    path.write_bytes(bytes(data))


def mp3(path: Path, seconds: float) -> None:
    """An MP3 made with PyAV (libmp3lame), `seconds` of tone."""
    rate = 16000
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = 64000
        samples = (np.sin(np.arange(int(seconds * rate)) / 8) * 8000).astype(np.int16)
        for start in range(0, len(samples), 1152):
            frame = av.AudioFrame.from_ndarray(
                samples[start : start + 1152].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def header_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / av.time_base


def test_crafted_header_claiming_hours_is_measured(tmp_path: Path) -> None:
    path = tmp_path / "claims-hours.mp3"
    crafted_mp3(path, seconds=2.0, claimed_frames=500_000)  # 576 samples each at 16 kHz: 5 h
    assert header_duration(path) > 3600  # the header lies...
    result = probe(path)
    assert result.duration == pytest.approx(2.0, abs=0.15)  # ... the stream does not (MP3 padding)
    assert result.header_duration is not None and result.header_duration > 3600


def test_truncated_mp3_is_measured_not_believed(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp3"
    mp3(whole, 30.0)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[:4000])  # about half a second of 64 kbit/s
    assert header_duration(cut) > 20  # estimated from the file's bit rate and... the header
    result = probe(cut)
    assert result.duration is not None and 0.2 < result.duration < 1.0
    assert probe(whole).duration == pytest.approx(30.0, abs=0.2)


def test_almost_no_audio_is_too_short(tmp_path: Path) -> None:
    data = (FIXTURES / "speech.mp3").read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[:600])  # opens, claims 6.25 s, decodes 0.003 s
    with pytest.raises(TooShort) as caught:
        probe(cut)
    assert caught.value.duration < MIN_DURATION_S
    assert isinstance(caught.value, NotMedia)


async def test_upload_of_a_crafted_header_stores_the_measured_duration(
    alice: ApiUser, tmp_path: Path
) -> None:
    path = tmp_path / "claims.mp3"
    crafted_mp3(path, seconds=2.0, claimed_frames=500_000)
    r = await alice.upload(path)
    assert r.status_code == 201, r.text
    assert r.json()["duration"] == pytest.approx(2.0, abs=0.15)


async def test_upload_with_almost_no_audio_is_422(alice: ApiUser, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp3"
    cut.write_bytes((FIXTURES / "speech.mp3").read_bytes()[:600])
    r = await alice.upload(cut)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "media_too_short"
    assert (await alice.get("/api/v1/audio")).json()["total"] == 0


@pytest.fixture
def crashing_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProbePool]:
    """The process's probe pool replaced by one whose child aborts on CRASH files
    (a test-only function: nothing in the API can choose what the child runs)."""
    pool = ProbePool(size=1, timeout_s=30, func=crashers.abort_on_crash_name)
    monkeypatch.setattr(probe_pool, "_pool", pool)
    yield pool
    pool.close()


@pytest.mark.slow
async def test_a_crashing_probe_is_a_422_and_the_api_stays_up(
    alice: ApiUser, crashing_pool: ProbePool, tmp_path: Path
) -> None:
    hostile = tmp_path / "hostile.mp3"
    hostile.write_bytes(b"CRASH" + b"\0" * 4000)
    r = await alice.upload(hostile)
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "media_probe_failed" and body["details"]["reason"] == "crashed"
    # The API process is alive and the pool has a fresh worker for the next file.
    assert (await alice.client.get("/health/live")).status_code == 200
    r = await alice.upload(FIXTURES / "speech.wav")
    assert r.status_code == 201, r.text
    assert (await alice.get("/api/v1/audio")).json()["total"] == 1


@pytest.mark.slow
async def test_a_hung_probe_is_killed_after_the_timeout(tmp_path: Path) -> None:
    pool = ProbePool(size=1, timeout_s=2, func=crashers.hang_on_hang_name)
    try:
        hung = tmp_path / "hung.wav"
        hung.write_bytes(b"HANG" + b"\0" * 100)
        with pytest.raises(probe_pool.ProbeFailed) as caught:
            await pool.probe(hung)
        assert caught.value.details == {"reason": "timeout"}
        result = await pool.probe(FIXTURES / "speech.wav")
        assert result.duration == pytest.approx(6.25, abs=0.05)
    finally:
        pool.close()


async def test_pool_answers_like_probe(tmp_path: Path) -> None:
    pool = ProbePool(size=2)
    try:
        assert await pool.probe(FIXTURES / "speech.mp3") == probe(FIXTURES / "speech.mp3")
        with pytest.raises(NotMedia):
            await pool.probe(FIXTURES / "not_audio.mp3")
    finally:
        pool.close()
