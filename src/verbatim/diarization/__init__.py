"""Dialogue mode: who spoke when, offline on CPU (Silero VAD + CAM++ ONNX + clustering)."""

from verbatim.diarization.model import EMBEDDING_DIM, SAMPLE_RATE, model_path
from verbatim.diarization.pipeline import (
    MAX_SPEAKERS,
    DiarizationInputError,
    DiarizationResult,
    Turn,
    diarize,
    is_stereo_per_channel,
)

__all__ = [
    "EMBEDDING_DIM",
    "MAX_SPEAKERS",
    "SAMPLE_RATE",
    "DiarizationInputError",
    "DiarizationResult",
    "Turn",
    "diarize",
    "is_stereo_per_channel",
    "model_path",
]
