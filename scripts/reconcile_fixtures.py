"""Clips with reference transcripts for the reconciliation benchmark (bench/reconcile.py).

    python scripts/reconcile_fixtures.py        # writes bench/data/reconcile/*

Each clip is one text (meetings, numbers and dates, names, technical words, casual speech,
news-like reading) spoken by one or two voices: espeak-ng voices and hibari-tts's neural voice,
through scripts/dialogue_fixtures.py's `synth` (``apt-get install espeak-ng``,
``pip install hibari-tts``). Some clips are clean; the others get pink noise or babble (other
voices reading other texts, summed) at 5-15 dB SNR, so engines make different errors. The texts
were written once, before any engine ran on them, and were not changed after.

Outputs: `<name>.ogg` (16 kHz mono Opus, 20 kbit/s) and `references.json` (name, text, voices,
noise, SNR, duration per clip), plus README.md. The reference is the text as written; the
benchmark's normaliser makes written and spoken forms of numbers compare equal.
"""

# ruff: noqa: E501 (the clip texts are long string lines)
from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dialogue_fixtures as df
import make_fixtures as mf

RATE = 16_000
OUT_DIR = mf.REPO_ROOT / "bench" / "data" / "reconcile"
BITRATE = 20_000
GAP_S = 0.4  # between the sentences of a clip

df.VOICES.update(
    {
        "us_f3": mf.Voice("en-us+f3", 155, 50),
        "gb": mf.Voice("en-gb", 160, 50),
        "rp": mf.Voice("en-gb-x-rp", 145, 50),
    }
)


@dataclass(frozen=True)
class Clip:
    name: str
    topic: str
    voices: tuple[str, ...]  # sentences alternate between these voices
    noise: str | None  # None, "pink" or "babble"
    snr_db: float | None
    sentences: tuple[str, ...]


def _s(text: str) -> tuple[str, ...]:
    """Split a paragraph into sentences (on '. ', '? ', '! ')."""
    out, cur = [], ""
    for part in text.replace("? ", "?|").replace("! ", "!|").replace(". ", ".|").split("|"):
        cur = part.strip()
        if cur:
            out.append(cur)
    return tuple(out)


CLIPS = [
    # Meetings
    Clip(
        "meeting_budget",
        "meeting",
        ("us_m3", "hibari"),
        None,
        None,
        _s(
            "Let's go through the action items from last week. "
            "Sarah was going to send the revised budget to finance. "
            "I sent it on Thursday, and they approved most of it. "
            "The only open question is the marketing line, which they want to cut by ten percent. "
            "Can we live with that? "
            "I think so, as long as the trade show stays in."
        ),
    ),
    Clip(
        "meeting_hiring",
        "meeting",
        ("f4", "rp_m7"),
        "pink",
        15,
        _s(
            "We have three candidates left for the engineering role. "
            "Two of them did well in the technical interview. "
            "The third one had less experience but asked very good questions. "
            "I would like to invite the first two back for a final round next Tuesday. "
            "That works for me. "
            "Please book the small meeting room and ask someone from the product team to join."
        ),
    ),
    Clip(
        "meeting_release",
        "meeting",
        ("hibari", "klatt"),
        "babble",
        12,
        _s(
            "Where are we with the release? "
            "The last blocking bug was fixed this morning, so the build is green again. "
            "Quality assurance still needs a day to finish the regression tests. "
            "Then we ship on Friday? "
            "Yes, unless they find something serious. "
            "I will write the release notes tonight and share them with the support team."
        ),
    ),
    Clip(
        "meeting_office",
        "meeting",
        ("car_f1", "us_m3"),
        "pink",
        8,
        _s(
            "The landlord called about the office lease. "
            "They want to raise the rent from next January. "
            "How much are we talking about? "
            "About four hundred a month more than we pay now. "
            "That is too much for a room we barely use on Fridays. "
            "Then let us look at smaller places closer to the station."
        ),
    ),
    # Numbers and dates
    Clip(
        "numbers_invoice",
        "numbers",
        ("us_f3",),
        None,
        None,
        _s(
            "Invoice number 4471 was issued on the 3rd of March 2024. "
            "The total comes to 2,350 dollars, including a delivery charge of 45 dollars. "
            "Payment is due within 30 days. "
            "Please quote the reference 1189 when you pay by bank transfer."
        ),
    ),
    Clip(
        "numbers_schedule",
        "numbers",
        ("hibari",),
        "pink",
        12,
        _s(
            "The train leaves at seven fifteen in the morning and arrives at ten forty. "
            "On Saturdays there are only three trains, at eight, at noon, and at six in the evening. "
            "A return ticket costs twenty two pounds, or fifteen with a railcard. "
            "The timetable changes again on the first of June."
        ),
    ),
    Clip(
        "numbers_stats",
        "numbers",
        ("rp",),
        "babble",
        10,
        _s(
            "Sales grew by 12 percent in the second quarter, to 8.4 million. "
            "The company now employs 1,200 people in 14 countries. "
            "It expects revenue of around 35 million for the full year. "
            "The results will be published on the 28th of October."
        ),
    ),
    Clip(
        "numbers_history",
        "numbers",
        ("gb",),
        "pink",
        5,
        _s(
            "The bridge was opened in 1894 and rebuilt in 1952 after a flood. "
            "It is 265 metres long and carries about 40,000 cars a day. "
            "Repairs planned for 2027 will close it for 6 months."
        ),
    ),
    # Names
    Clip(
        "names_conference",
        "names",
        ("hibari",),
        None,
        None,
        _s(
            "The conference opens with a talk by Maria Gonzalez from the University of Toronto. "
            "After lunch, Hiroshi Tanaka and Olivia Bennett will present their work on river flooding. "
            "The closing panel is chaired by Doctor Amara Okafor, "
            "with guests from Nairobi, Helsinki and Buenos Aires."
        ),
    ),
    Clip(
        "names_team",
        "names",
        ("scot_m1",),
        "babble",
        15,
        _s(
            "Please welcome the new members of the team. "
            "Priya Sharma joins us from the London office as a data analyst. "
            "Lukas Schneider will lead the design group in Berlin. "
            "And Kevin O'Brien is our new account manager for clients in Dublin and Cork."
        ),
    ),
    Clip(
        "names_travel",
        "names",
        ("us_m3",),
        "pink",
        10,
        _s(
            "Our tour starts in Lisbon, then takes the coast road south to Seville. "
            "From there we fly to Marrakesh and spend two nights in the old town. "
            "The guide, Youssef, speaks English, French and Arabic. "
            "The last stop is Granada, where we visit the Alhambra in the early morning."
        ),
    ),
    Clip(
        "names_history",
        "names",
        ("klatt",),
        None,
        None,
        _s(
            "Ada Lovelace worked with Charles Babbage on his analytical engine. "
            "A century later, Alan Turing and Grace Hopper helped shape modern computing. "
            "Today their names are given to prizes, buildings and even programming languages."
        ),
    ),
    # Technical words
    Clip(
        "tech_database",
        "technical",
        ("rp_m7",),
        None,
        None,
        _s(
            "The database runs on PostgreSQL with the pgvector extension for embeddings. "
            "Each query first filters by tenant, then ranks the results by cosine distance. "
            "When the index grows past a million rows, we rebuild it with a larger list count "
            "and run vacuum analyze during the night."
        ),
    ),
    Clip(
        "tech_kubernetes",
        "technical",
        ("hibari",),
        "babble",
        8,
        _s(
            "We deploy the service on Kubernetes with three replicas behind a load balancer. "
            "Each pod has a liveness probe and a readiness probe. "
            "Logs go to a central collector, and metrics are scraped by Prometheus every fifteen seconds. "
            "If the latency rises above the threshold, an alert is sent to the on call engineer."
        ),
    ),
    Clip(
        "tech_network",
        "technical",
        ("car_f1",),
        "pink",
        12,
        _s(
            "The router assigns addresses with DHCP and forwards traffic on port four four three. "
            "Inside the network, the firewall blocks every connection that is not on the allow list. "
            "To debug a problem, first check the DNS settings, then run a trace route to the server."
        ),
    ),
    Clip(
        "tech_ml",
        "technical",
        ("us_f3",),
        "babble",
        5,
        _s(
            "The model was trained on twelve thousand hours of speech with a transformer encoder. "
            "We measured the word error rate on a held out set and compared it with the baseline. "
            "Quantisation to eight bit integers made inference twice as fast with almost no loss."
        ),
    ),
    # Casual speech
    Clip(
        "casual_weekend",
        "casual",
        ("hibari", "f4"),
        None,
        None,
        _s(
            "So what did you get up to this weekend? "
            "Not much, honestly. "
            "We went for a long walk on Saturday and then just stayed in and watched movies. "
            "That sounds nice. "
            "Yeah, it was. "
            "I needed a quiet one after the week I had."
        ),
    ),
    Clip(
        "casual_food",
        "casual",
        ("us_m3", "car_f1"),
        "babble",
        10,
        _s(
            "Are you hungry? "
            "I could eat. "
            "There's a new pizza place around the corner, want to try it? "
            "Sure, but I heard it gets pretty busy after seven. "
            "Then let's go now before the queue starts. "
            "Okay, give me a minute to grab my jacket."
        ),
    ),
    Clip(
        "casual_phone",
        "casual",
        ("klatt", "hibari"),
        "pink",
        5,
        _s(
            "Hey, it's me, can you hear me? "
            "Yes, but you keep cutting out. "
            "I'm on the bus, the signal is terrible here. "
            "Call me back when you get home then. "
            "Will do, talk to you later."
        ),
    ),
    Clip(
        "casual_plans",
        "casual",
        ("gb", "us_f3"),
        "pink",
        15,
        _s(
            "Did you book the flights yet? "
            "Not yet, the prices went up again last night. "
            "Maybe we should wait until next week. "
            "Or we could take the ferry instead, it's slower but much cheaper. "
            "I like that idea, we can bring the bikes."
        ),
    ),
    # News-like reading
    Clip(
        "news_weather",
        "news",
        ("rp",),
        None,
        None,
        _s(
            "Heavy rain is expected across the north of the country tomorrow, "
            "with flood warnings in place for several river valleys. "
            "Drivers are advised to avoid unnecessary journeys. "
            "Conditions should improve by the weekend, when a ridge of high pressure brings drier air."
        ),
    ),
    Clip(
        "news_city",
        "news",
        ("hibari",),
        "pink",
        10,
        _s(
            "The city council has approved a plan to build a new library in the harbour district. "
            "Construction is due to begin next spring and will take about two years. "
            "Local residents welcomed the decision, "
            "although some questioned the cost at a time when other services face cuts."
        ),
    ),
    Clip(
        "news_science",
        "news",
        ("scot_m1",),
        None,
        None,
        _s(
            "Scientists have found a new species of frog in the mountains of northern Peru. "
            "The tiny animal is smaller than a fingernail and lives in damp moss. "
            "Researchers say the discovery shows how much remains unknown about the region, "
            "and they are calling for better protection of its forests."
        ),
    ),
    Clip(
        "news_sport",
        "news",
        ("f4",),
        "babble",
        12,
        _s(
            "The national team won their opening match of the tournament last night. "
            "After a slow first half, the captain scored twice in ten minutes. "
            "The coach praised the players for staying calm under pressure. "
            "Their next game is on Sunday against the defending champions."
        ),
    ),
]

# Babble: these texts, read by voices not otherwise in the clip, summed with offsets.
BABBLE_TEXTS = [
    "I told him we would be late but he did not listen to me at all.",
    "The shop on the corner closes early on Wednesdays in the winter.",
    "Could you pass me the salt and the pepper, please, thank you.",
    "My sister is moving to a new flat near the park next month.",
    "They say the new bus line will open before the end of the year.",
    "We should probably ask somebody who knows the area a bit better.",
]
BABBLE_VOICES = ["us_m3", "f4", "klatt", "rp_m7", "car_f1", "scot_m1", "gb", "us_f3"]


def build_speech(clip: Clip) -> np.ndarray:
    parts: list[np.ndarray] = [np.zeros(int(0.4 * RATE), np.float32)]
    for i, sentence in enumerate(clip.sentences):
        parts.append(df.synth(clip.voices[i % len(clip.voices)], sentence))
        parts.append(np.zeros(int(GAP_S * RATE), np.float32))
    return np.concatenate(parts)


def babble(n: int, exclude: tuple[str, ...], seed: int) -> np.ndarray:
    """Four other voices talking at once, each looping its texts, with random offsets."""
    rng = np.random.default_rng(seed)
    voices = [v for v in BABBLE_VOICES if v not in exclude]
    chosen = rng.choice(len(voices), size=4, replace=False)
    out = np.zeros(n, np.float32)
    for k in chosen:
        order = rng.permutation(len(BABBLE_TEXTS))
        stream = np.concatenate(
            [df.synth(voices[int(k)], BABBLE_TEXTS[int(t)]) for t in order]
            + [np.zeros(int(0.3 * RATE), np.float32)]
        )
        reps = int(np.ceil((n + stream.shape[0]) / stream.shape[0]))
        looped = np.tile(stream, reps)
        offset = int(rng.integers(0, stream.shape[0]))
        out += looped[offset : offset + n]
    return out / out.std()


def mix(clip: Clip, speech: np.ndarray) -> np.ndarray:
    if clip.noise is None:
        return speech
    seed = zlib.crc32(clip.name.encode())
    n = speech.shape[0]
    noise = df.pink_noise(n, seed) if clip.noise == "pink" else babble(n, clip.voices, seed)
    assert clip.snr_db is not None
    speech_power = float((speech[np.abs(speech) > 1e-4] ** 2).mean())
    out = speech + noise * np.sqrt(speech_power / 10 ** (clip.snr_db / 10))
    return out / max(1.0, float(np.abs(out).max()))


def encode_ogg(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[np.newaxis, :]
    with av.open(str(path), "w", format="ogg", container_options=mf.CONTAINER_OPTIONS) as out:
        stream = out.add_stream("libopus", rate=RATE, options=dict(mf.CODEC_OPTIONS))
        stream.layout = "mono"
        stream.bit_rate = BITRATE
        frame = av.AudioFrame.from_ndarray(pcm, format="s16p", layout="mono")
        frame.sample_rate = RATE
        frame.pts = 0
        frame.time_base = Fraction(1, RATE)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def voice_label(key: str) -> str:
    voice = df.VOICES[key]
    return "hibari-tts voice heart" if voice == "hibari" else f"espeak-ng {voice.label()}"  # type: ignore[union-attr]


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    refs = []
    lines = []
    for clip in CLIPS:
        audio = mix(clip, build_speech(clip))
        duration = audio.shape[0] / RATE
        if not 10.0 <= duration <= 40.0:
            print(f"{clip.name}: {duration:.1f} s is outside 10-40 s", file=sys.stderr)
            return 1
        path = OUT_DIR / f"{clip.name}.ogg"
        encode_ogg(path, audio)
        refs.append(
            {
                "name": clip.name,
                "topic": clip.topic,
                "voices": list(clip.voices),
                "noise": clip.noise,
                "snr_db": clip.snr_db,
                "duration": round(duration, 3),
                "text": " ".join(clip.sentences),
            }
        )
        cond = "clean" if clip.noise is None else f"{clip.noise} {clip.snr_db:g} dB"
        line = (
            f"| `{clip.name}` | {clip.topic} | {', '.join(clip.voices)} | {cond} | "
            f"{duration:.1f} | {path.stat().st_size // 1024} |"
        )
        print(line, flush=True)
        lines.append(line)
    (OUT_DIR / "references.json").write_text(json.dumps({"clips": refs}, indent=1) + "\n")
    total = sum(r["duration"] for r in refs)
    size = sum((OUT_DIR / f"{r['name']}.ogg").stat().st_size for r in refs)
    readme = [
        "# Reconciliation benchmark clips",
        "",
        "Generated by `python scripts/reconcile_fixtures.py` (espeak-ng voices and hibari-tts's",
        "built-in neural voice, through scripts/dialogue_fixtures.py) and committed; the benchmark",
        "(`python -m bench.run reconcile`) never runs a TTS. Each `<name>.ogg` is 16 kHz mono Opus",
        f"at {BITRATE // 1000} kbit/s; `references.json` holds each clip's reference text (as",
        "written, numbers as digits where a transcriber would write them), voices, noise and SNR.",
        "Sentences of two-voice clips alternate voices. Noisy clips get pink noise or babble",
        "(four other voices reading other sentences, summed) at the SNR shown, measured against",
        "the speech's power where it is not silent. The texts were written before any engine ran",
        "on them and were not changed after.",
        "",
        f"{len(refs)} clips, {total:.0f} s in all, {size / 1e6:.2f} MB. Voices:",
        "",
    ]
    used = sorted({v for c in CLIPS for v in c.voices})
    readme += [f"- `{key}`: {voice_label(key)}" for key in used]
    readme += [
        "",
        "| clip | topic | voices | condition | seconds | KiB |",
        "|---|---|---|---|---|---|",
        *lines,
    ]
    (OUT_DIR / "README.md").write_text("\n".join(readme) + "\n")
    print(f"{len(refs)} clips, {total:.0f} s, {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
