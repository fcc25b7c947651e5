"""Lossless audio to Opus for storage (VERBATIM_STORE_TRANSCODED=opus), with PyAV's libopus.

Speech at 32 kbit/s per channel in Opus is transparent for recognition and a tenth of a 16-bit
PCM file or less. Opus runs at 48 kHz internally; lower rates are resampled up, which costs
nothing in size. Mono stays mono, anything wider becomes stereo.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import av

_OPUS_RATE = 48_000
_LOSSLESS = {"flac", "alac", "wavpack", "tta", "ape"}


def is_lossless(codec: str, has_video: bool) -> bool:
    return not has_video and (codec.startswith("pcm_") or codec in _LOSSLESS)


def transcode_to_opus(source: Path, target: Path, bitrate_per_channel: int = 32_000) -> None:
    """Write `source`'s first audio track to `target` as Ogg Opus; atomically (temp + rename)."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    # Created private before libav opens it (libav keeps the mode of an existing file).
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with av.open(str(source)) as inp:
            stream = inp.streams.audio[0]
            layout = "mono" if (stream.codec_context.channels or 1) == 1 else "stereo"
            channels = 1 if layout == "mono" else 2
            resampler = av.AudioResampler(format="s16", layout=layout, rate=_OPUS_RATE)
            with av.open(str(partial), mode="w", format="ogg") as out:
                encoder = out.add_stream("libopus", rate=_OPUS_RATE, layout=layout)
                encoder.bit_rate = bitrate_per_channel * channels
                for frame in inp.decode(stream):
                    frame.pts = None
                    for resampled in resampler.resample(frame):
                        for packet in encoder.encode(resampled):
                            out.mux(packet)
                for resampled in resampler.resample(None):
                    for packet in encoder.encode(resampled):
                        out.mux(packet)
                for packet in encoder.encode(None):
                    out.mux(packet)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
