"""Decode a media file to what :func:`verbatim.diarization.diarize` takes: float32 at 16 kHz.

Channels are kept (per-channel speakers need them); more than two are mixed down to mono, as
:func:`~verbatim.diarization.diarize` only labels stereo by channel.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from verbatim.diarization.model import SAMPLE_RATE, FloatArray


def load_audio(path: str | Path, *, max_seconds: float | None = None) -> FloatArray:
    """Decode the first audio stream -> float32 (channels, samples), 1 or 2 channels, 16 kHz."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels or 1
        layout = "stereo" if channels == 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        total = 0
        limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
        for frame in container.decode(stream):
            frame.pts = None
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
                total += chunks[-1].shape[1]
            if limit is not None and total >= limit:
                break
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    n_ch = 2 if layout == "stereo" else 1
    if not chunks:
        return np.zeros((n_ch, 0), dtype=np.float32)
    audio = np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)
    if limit is not None:
        audio = audio[:, :limit]
    result: FloatArray = np.clip(audio, -1.0, 1.0)
    return result
