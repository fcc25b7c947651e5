"""The two ONNX models of the dialogue pipeline: Silero VAD and CAM++ speaker embeddings.

Both run with onnxruntime on CPU with bounded threads. Nothing is downloaded: Silero VAD v6 ships
inside faster-whisper, and CAM++ (3D-Speaker, Apache-2.0) is exported once at development time
by ``scripts/export_campplus.py`` and shipped as package data next to this file.
"""

from __future__ import annotations

import functools
import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
EMBEDDING_DIM = 192
FBANK_DIM = 80
FRAME_SHIFT = 160  # samples (10 ms)
FRAME_LENGTH = 400  # samples (25 ms)
VAD_WINDOW = 512  # samples per Silero VAD probability (32 ms)

MODEL_FILE = "campplus.onnx"

FloatArray = npt.NDArray[np.float32]


def model_path() -> Path:
    """Path of the packaged CAM++ ONNX file."""
    return Path(str(resources.files("verbatim.diarization").joinpath(MODEL_FILE)))


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class SpeakerEmbedder:
    """CAM++ on onnxruntime: (windows of fbank frames) -> L2-normalised 192-d embeddings."""

    def __init__(self, path: Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self._session: Any = ort.InferenceSession(
            str(path or model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def embed(self, feats: FloatArray) -> FloatArray:
        """``feats`` (batch, frames, 80), already mean-normalised -> (batch, 192), unit norm."""
        with self._lock:
            out = self._session.run(["embedding"], {"feats": feats})[0]
        emb = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        normed: FloatArray = (emb / np.maximum(norms, 1e-8)).astype(np.float32)
        return normed


@functools.lru_cache(maxsize=4)
def get_embedder(threads: int | None = None) -> SpeakerEmbedder:
    """One embedder per process (and thread count): the session costs ~40 MB and ~0.2 s."""
    return SpeakerEmbedder(threads=threads)


def fbank(samples: FloatArray) -> FloatArray:
    """80-dim Kaldi fbank (25 ms window, 10 ms shift, povey window, no dither) of mono 16 kHz.

    Mel options are Kaldi's own (HTK mel scale, unnormalised triangles), as 3D-Speaker computes
    them with ``torchaudio.compliance.kaldi.fbank`` during training. Input is in [-1, 1]; the
    per-window mean normalisation removes any constant scale offset.
    """
    import kaldi_native_fbank as knf

    if samples.shape[0] < FRAME_LENGTH:
        return np.zeros((0, FBANK_DIM), dtype=np.float32)
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = FBANK_DIM
    opts.mel_opts.norm = "none"
    opts.mel_opts.use_slaney_mel_scale = False
    computer = knf.OnlineFbank(opts)
    computer.accept_waveform(SAMPLE_RATE, samples)
    computer.input_finished()
    n = computer.num_frames_ready
    out = np.empty((n, FBANK_DIM), dtype=np.float32)
    for i in range(n):
        out[i] = computer.get_frame(i)
    return out


_vad_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _vad_model() -> Any:
    from faster_whisper.vad import get_vad_model

    return get_vad_model()


def speech_probabilities(samples: FloatArray) -> FloatArray:
    """Silero VAD v6 speech probability for each 32 ms window of mono 16 kHz audio."""
    if samples.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    pad = (-samples.shape[0]) % VAD_WINDOW
    padded = np.pad(samples, (0, pad)) if pad else np.ascontiguousarray(samples)
    with _vad_lock:
        probs = _vad_model()(padded)
    return np.asarray(probs, dtype=np.float32).reshape(-1)
