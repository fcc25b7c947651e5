"""The pipeline benchmark's reference: bare faster-whisper, in a fresh process, nothing else.

`python -m bench.whisper_reference --file F --model-path P --options JSON` prints one JSON
object. The model is built exactly as the service's engine builds it (`WhisperModel(path,
device="cpu", compute_type="int8", cpu_threads=0)`) and `transcribe` gets the same options the
benchmark sends to the API. Loading the model is timed apart from transcribing: the service
loads its model once at start-up, so only transcription plus consuming every segment (the
generator runs the model as it is consumed) is compared with the service.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", required=True)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--options", required=True, help="transcribe() keyword arguments, JSON")
    args = parser.parse_args(argv)
    options = json.loads(args.options)

    started = time.perf_counter()
    from faster_whisper import WhisperModel

    imported = time.perf_counter()
    model = WhisperModel(args.model_path, device="cpu", compute_type="int8", cpu_threads=0)
    loaded = time.perf_counter()

    segments, info = model.transcribe(args.file, **options)
    texts: list[str] = []
    words = 0
    for segment in segments:
        texts.append(str(segment.text).strip())
        words += len(segment.words or ())
    finished = time.perf_counter()

    json.dump(
        {
            "import_s": imported - started,
            "model_load_s": loaded - imported,
            "transcribe_s": finished - loaded,
            "duration_s": float(info.duration),
            "language": info.language,
            "segments": len(texts),
            "words": words,
            "text": " ".join(texts).strip(),
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
