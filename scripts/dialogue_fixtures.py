"""Synthetic conversations for the dialogue-mode tests and bench (``make_fixtures.py --dialogue``).

Each conversation is a script of (voice, text) turns spoken by espeak-ng voices and hibari-tts's
neural voice ("heart", inside the wheel: ``pip install hibari-tts``), each utterance trimmed of
its leading and trailing silence and placed with a short gap (or a small overlap) after the
previous one. The reference is exact: the speech islands of each clean utterance (pauses of
0.25 s or more inside an utterance are not speech), written as RTTM with the voice name as the
speaker, plus a JSON with the script text and turn times. Files are 16 kHz Opus in Ogg.

Voices were picked to be distinct to CAM++: the centroid cosine similarity of every pair used
together is at most ~0.55. en-us+m3 and en-gb+f2 score 0.82 and en-us+m3 with
en-gb-scotland+m1 0.67, so those are never paired: to CAM++ they are nearly one voice (the
pipeline merges the second pair at an average-linkage distance of 0.497, against its 0.5 cut).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import make_fixtures as mf
import numpy as np

RATE = 16_000
OUT_DIR = mf.REPO_ROOT / "tests" / "fixtures" / "dialogue"
BITRATE = 32_000
GAP_S = 0.35  # silence between turns (negative: overlap)
ISLAND_GAP_S = 0.25  # pauses this long inside an utterance are not speech in the reference

VOICES: dict[str, mf.Voice | str] = {
    "hibari": "hibari",
    "us_m3": mf.Voice("en-us+m3", 150, 40),
    "f4": mf.Voice("en+f4", 150, 70),
    "klatt": mf.Voice("en-us+klatt", 150, 50),
    "rp_m7": mf.Voice("en-gb-x-rp+m7", 145, 45),
    "car_f1": mf.Voice("en-029+f1", 155, 55),
    "scot_m1": mf.Voice("en-gb-scotland+m1", 140, 35),
}

LINES = [
    "Thanks for coming in today.",
    "Happy to be here.",
    "Let us start with the budget for next year.",
    "I looked at the numbers again last night and they do not add up.",
    "Which part worries you the most?",
    "Mostly the travel costs, they doubled.",
    "Really? That seems like a lot.",
    "It is. We sent twice as many people to the conference.",
    "Can we cut that in half?",
    "Maybe, if we share hotel rooms.",
    "Nobody will like that.",
    "I know, but it is cheaper than cancelling the trip.",
    "What about the new laptops?",
    "They arrive on Monday.",
    "Good. Who sets them up?",
    "The support team, as usual.",
    "Fine. Anything else on the list?",
    "Just the schedule for the spring release.",
    "We moved it to April, right?",
    "Yes, the second week of April.",
    "That gives us six more weeks of testing.",
    "Which we badly need.",
    "Agreed. Let us meet again on Thursday.",
    "Thursday works for me.",
]
QUICK = [
    "Ready?",
    "Almost.",
    "Now?",
    "Yes, go.",
    "Left or right?",
    "Left.",
    "Are you sure?",
    "Quite sure.",
    "Okay then.",
    "Wait, stop.",
    "What happened?",
    "Wrong turn.",
    "Oh no.",
    "Never mind.",
    "Keep going.",
    "Fine.",
]


@dataclass(frozen=True)
class Conversation:
    name: str
    voices: tuple[str, ...]
    lines: tuple[str, ...]
    order: tuple[int, ...] | None = None  # voice index per line; default round robin
    snr_db: float | None = None
    stereo: bool = False
    description: str = ""


CONVERSATIONS = [
    Conversation(
        "two_interview",
        ("hibari", "us_m3"),
        tuple(LINES[:14]),
        description="2 speakers, interview, turns of 1-4 s",
    ),
    Conversation(
        "two_quick",
        ("f4", "rp_m7"),
        tuple(QUICK),
        description="2 speakers, quick back-and-forth, every turn under 2 s",
    ),
    Conversation(
        "three_meeting",
        ("klatt", "car_f1", "hibari"),
        tuple(LINES[6:24]),
        order=(0, 1, 2, 0, 2, 1, 1, 0, 2, 2, 0, 1, 0, 2, 1, 0, 1, 2),
        description="3 speakers, irregular order",
    ),
    Conversation(
        "four_meeting",
        ("us_m3", "f4", "rp_m7", "klatt"),
        tuple(LINES[:20]),
        order=(0, 1, 2, 3, 1, 0, 3, 2, 0, 2, 1, 3, 3, 0, 1, 2, 0, 3, 1, 2),
        description="4 speakers, irregular order",
    ),
    Conversation(
        "one_speaker",
        ("car_f1",),
        tuple(LINES[2:10]),
        description="1 speaker reading 8 lines",
    ),
    Conversation(
        "two_noisy_15db",
        ("klatt", "hibari"),
        tuple(LINES[10:22]),
        snr_db=15.0,
        description="2 speakers, pink noise at 15 dB SNR",
    ),
    Conversation(
        "three_noisy_10db",
        ("scot_m1", "car_f1", "f4"),
        tuple(LINES[4:16]),
        snr_db=10.0,
        description="3 speakers, pink noise at 10 dB SNR",
    ),
    Conversation(
        "stereo_call",
        ("us_m3", "hibari"),
        tuple(LINES[8:20]) + tuple(QUICK[:6]),
        stereo=True,
        description="stereo call, one speaker per channel, -30 dB bleed, two small overlaps",
    ),
]

_hibari_model = None


def synth(voice_name: str, text: str) -> np.ndarray:
    """Mono float32 at 16 kHz, leading and trailing silence trimmed."""
    global _hibari_model
    voice = VOICES[voice_name]
    if voice == "hibari":
        from hibari import SAMPLE_RATE, Hibari

        if _hibari_model is None:
            _hibari_model = Hibari()
        wav = np.asarray(_hibari_model(text, seed=0), dtype=np.float32)
        pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)[np.newaxis, :]
        pcm = mf.resample(pcm, SAMPLE_RATE, RATE)
    else:
        assert isinstance(voice, mf.Voice)
        pcm = mf.speak(text, voice)
    x = pcm[0].astype(np.float32) / 32768
    x = x / max(float(np.abs(x).max()), 1e-6) * 0.5  # same peak level for every voice
    loud = np.flatnonzero(np.abs(x) > 0.01)
    return x[loud[0] : loud[-1] + 1] if loud.size else x[:0]


def islands(x: np.ndarray) -> list[tuple[int, int]]:
    """Speech islands of a clean utterance: 10 ms frames above -40 dB of its peak frame."""
    hop = RATE // 100
    n = x.shape[0] // hop
    if n == 0:
        return []
    power = (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    active = power > power.max() * 1e-4
    out: list[list[int]] = []
    for i in np.flatnonzero(active):
        s, e = int(i) * hop, (int(i) + 1) * hop
        if out and s - out[-1][1] < ISLAND_GAP_S * RATE:
            out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def pink_noise(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return (noise / noise.std()).astype(np.float32)


def build(conv: Conversation) -> tuple[np.ndarray, list[dict[str, object]]]:
    order = conv.order or tuple(i % len(conv.voices) for i in range(len(conv.lines)))
    assert len(order) == len(conv.lines)
    utterances = [synth(conv.voices[v], text) for v, text in zip(order, conv.lines, strict=True)]
    n_ch = 2 if conv.stereo else 1
    pos = int(0.5 * RATE)
    placed = []
    for i, x in enumerate(utterances):
        gap = GAP_S
        if conv.stereo and i in (5, 11):  # the next speaker starts before this one ends
            gap = -0.4
        placed.append((pos, x))
        pos = max(pos + x.shape[0] + int(gap * RATE), pos + 1)
    total = max(p + x.shape[0] for p, x in placed) + int(0.5 * RATE)
    audio = np.zeros((n_ch, total), dtype=np.float32)
    turns: list[dict[str, object]] = []
    for (p, x), v, text in zip(placed, order, conv.lines, strict=True):
        if conv.stereo:
            audio[v, p : p + x.shape[0]] += x
            audio[1 - v, p : p + x.shape[0]] += x * 10 ** (-30 / 20)  # microphone bleed
        else:
            audio[0, p : p + x.shape[0]] += x
        turns.append(
            {
                "speaker": conv.voices[v],
                "channel": v if conv.stereo else 0,
                "start": round(p / RATE, 3),
                "end": round((p + x.shape[0]) / RATE, 3),
                "text": text,
                "speech": [
                    [round((p + s) / RATE, 3), round((p + e) / RATE, 3)] for s, e in islands(x)
                ],
            }
        )
    if conv.snr_db is not None:
        speech_power = float((audio[audio != 0] ** 2).mean())
        noise = pink_noise(audio.shape[1], zlib.crc32(conv.name.encode()))
        audio += noise * np.sqrt(speech_power / 10 ** (conv.snr_db / 10))
    return np.clip(audio, -1, 1), turns


def encode_ogg(path: Path, audio: np.ndarray) -> None:
    layout = "stereo" if audio.shape[0] == 2 else "mono"
    pcm = (audio * 32767).astype(np.int16)
    with av.open(str(path), "w", format="ogg", container_options=mf.CONTAINER_OPTIONS) as out:
        stream = out.add_stream("libopus", rate=RATE, options=dict(mf.CODEC_OPTIONS))
        stream.layout = layout
        stream.bit_rate = BITRATE * audio.shape[0]
        frame = av.AudioFrame.from_ndarray(pcm, format="s16p", layout=layout)
        frame.sample_rate = RATE
        frame.pts = 0
        frame.time_base = Fraction(1, RATE)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def rttm_lines(name: str, turns: list[dict[str, object]]) -> list[str]:
    lines = []
    for turn in turns:
        for s, e in turn["speech"]:  # type: ignore[attr-defined]
            lines.append(
                f"SPEAKER {name} 1 {s:.3f} {e - s:.3f} <NA> <NA> {turn['speaker']} <NA> <NA>"
            )
    return lines


def build_all(out_dir: Path = OUT_DIR) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    readme = [
        "# Dialogue fixtures",
        "",
        "Generated by `python scripts/make_fixtures.py --dialogue` (scripts/dialogue_fixtures.py:",
        "espeak-ng voices and hibari-tts's built-in neural voice) and committed; tests never run",
        "a TTS. Each `<name>.ogg` (16 kHz Opus) has `<name>.rttm` (reference speech per speaker,",
        "the speaker is the voice name) and `<name>.json` (script: speaker, channel, turn start",
        "and end, text, speech islands). Voices:",
        "",
    ]
    for key, voice in VOICES.items():
        readme.append(
            f"- `{key}`: "
            + ("hibari-tts voice heart" if voice == "hibari" else f"espeak-ng {voice.label()}")
        )  # type: ignore[union-attr]
    readme.append("")
    summary = []
    for conv in CONVERSATIONS:
        audio, turns = build(conv)
        encode_ogg(out_dir / f"{conv.name}.ogg", audio)
        (out_dir / f"{conv.name}.rttm").write_text("\n".join(rttm_lines(conv.name, turns)) + "\n")
        meta = {
            "name": conv.name,
            "description": conv.description,
            "channels": audio.shape[0],
            "duration": round(audio.shape[1] / RATE, 3),
            "speakers": list(conv.voices),
            "snr_db": conv.snr_db,
            "turns": turns,
        }
        (out_dir / f"{conv.name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        longest = max(float(t["end"]) - float(t["start"]) for t in turns)  # type: ignore[arg-type]
        line = (
            f"- `{conv.name}.ogg`: {conv.description}; {len(conv.voices)} voices "
            f"({', '.join(conv.voices)}), {len(turns)} turns, {audio.shape[1] / RATE:.1f} s, "
            f"longest turn {longest:.1f} s"
        )
        readme.append(line)
        summary.append(line)
    (out_dir / "README.md").write_text("\n".join(readme) + "\n")
    return summary
