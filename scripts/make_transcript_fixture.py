"""Transcribe bench/data/speech_10min.ogg with the service's engine and defaults (tiny.en int8)
into tests/fixtures/speech_10min.transcript.json (run from the repository root)."""

import dataclasses
import json

from verbatim.engines.base import TranscribeOptions
from verbatim.engines.faster_whisper_engine import FasterWhisperEngine
from verbatim.engines.models import resolve_model

model = resolve_model("tiny.en", None)
eng = FasterWhisperEngine()
r = eng.transcribe(model, "bench/data/speech_10min.ogg", TranscribeOptions())
out = {
    "source": "bench/data/speech_10min.ogg",
    "engine": "faster-whisper",
    "model": model.name,
    "options": dataclasses.asdict(TranscribeOptions()),
    "language": r.language,
    "duration": r.duration,
    "segments": [
        {
            "start": s.start,
            "end": s.end,
            "text": s.text,
            "words": [dataclasses.asdict(w) for w in s.words],
        }
        for s in r.segments
    ],
}
json.dump(out, open("tests/fixtures/speech_10min.transcript.json", "w"), indent=0)
print(len(r.segments), r.processing_time_s)
