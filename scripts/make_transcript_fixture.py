"""Transcribe bench/data/speech_10min.ogg with the service's engine and defaults (tiny.en, int8)
into tests/fixtures/speech_10min.transcript.json. Run from the repository root."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from verbatim.engines.base import TranscribeOptions
from verbatim.engines.faster_whisper_engine import FasterWhisperEngine
from verbatim.engines.models import resolve_model

SOURCE = "bench/data/speech_10min.ogg"
OUT = Path("tests/fixtures/speech_10min.transcript.json")


def main() -> None:
    model = resolve_model("tiny.en", None)
    options = TranscribeOptions()
    result = FasterWhisperEngine().transcribe(model, SOURCE, options)
    out = {
        "source": SOURCE,
        "engine": "faster-whisper",
        "model": model.name,
        "options": dataclasses.asdict(options),
        "language": result.language,
        "duration": result.duration,
        "segments": [
            {
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "words": [dataclasses.asdict(w) for w in s.words],
            }
            for s in result.segments
        ],
    }
    OUT.write_text(json.dumps(out, indent=0))
    print(len(result.segments), "segments in", round(result.processing_time_s, 1), "s")


if __name__ == "__main__":
    main()
