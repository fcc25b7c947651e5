"""The local engine's batched path (VERBATIM_ENGINE_BATCH_SIZE > 0) gives the same result shape."""

from __future__ import annotations

from tests.conftest import FIXTURES
from verbatim.engines.base import TranscribeOptions
from verbatim.engines.faster_whisper_engine import FasterWhisperEngine
from verbatim.engines.models import resolve_model


def test_batched_path_transcribes_with_words() -> None:
    model = resolve_model("tiny.en", None)
    sequential = FasterWhisperEngine().transcribe(
        model, str(FIXTURES / "speech.wav"), TranscribeOptions()
    )
    batched = FasterWhisperEngine(batch_size=4).transcribe(
        model, str(FIXTURES / "speech.wav"), TranscribeOptions()
    )
    for result in (sequential, batched):
        text = " ".join(s.text for s in result.segments).lower()
        assert "quick brown fox" in text and "lazy dog" in text
        words = [w for s in result.segments for w in s.words]
        assert len(words) >= 10 and all(0 <= w.probability <= 1 for w in words)
        assert result.language == "en" and abs(result.duration - 6.25) < 0.1
