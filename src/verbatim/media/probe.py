"""What a file really is, from its bytes (PyAV), never from its name or the client's MIME type.

The duration is measured from the stream itself, never taken from a header: every packet of the
audio track is demuxed (read, not decoded: about a second for an hour of MP3) and the duration is
the span from the first packet's timestamp to the end of the last one. A header can claim any
length (a 700-byte cut of an MP3 says 19.7 s and holds 0.11 s); limits (`media_too_long`) and
quotas must not trust it. The first packets are decoded to prove the audio is real.

A file with less than `MIN_DURATION_S` of audio is refused (`media_too_short`): nothing in it can
be transcribed, and it is most likely a cut-off or a crafted file.

Run it in a child process (`media.probe_pool`): libav parses hostile input here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
from av.stream import Disposition

# Decoding a few packets proves the audio is real, not just a plausible header.
_PACKETS_TO_DECODE = 50
MIN_DURATION_S = 0.1


class NotMedia(Exception):
    """The file is not decodable audio, or video with an audio track."""


class TooShort(NotMedia):
    """Decodable, but with (almost) no audio in it."""

    def __init__(self, duration: float) -> None:
        super().__init__(f"only {duration:.3f} s of audio")
        self.duration = duration


@dataclass(frozen=True)
class ProbeResult:
    container: str
    mime_type: str
    codec: str
    duration: float | None
    sample_rate: int | None
    channels: int | None
    has_video: bool
    header_duration: float | None = None  # what the container claimed, for the logs


def probe(path: Path) -> ProbeResult:
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise NotMedia(f"not a media file: {exc.__class__.__name__}") from exc
    with container:
        audio = next(iter(container.streams.audio), None)
        if audio is None:
            raise NotMedia("no audio track")
        # Cover art in an MP3 or M4A shows up as a one-picture video stream: not video.
        has_video = any(
            not (s.disposition & Disposition.attached_pic) for s in container.streams.video
        )
        header_duration = _header_duration(container, audio)
        duration = _measure(container, audio)
        if duration < MIN_DURATION_S:
            raise TooShort(duration)
        fmt = container.format.name
        codec = audio.codec_context.codec.canonical_name
        return ProbeResult(
            container=fmt,
            mime_type=_mime_type(fmt, codec, has_video),
            codec=codec,
            duration=round(duration, 3),
            sample_rate=audio.codec_context.sample_rate or None,
            channels=audio.codec_context.channels or None,
            has_video=has_video,
            header_duration=round(header_duration, 3) if header_duration else None,
        )


def _measure(container: av.container.InputContainer, audio: av.AudioStream) -> float:
    """Seconds of audio in the stream: demux every packet, decode only the first few."""
    frames = 0
    decoded_seconds = 0.0
    first: int | None = None
    last_end: int | None = None
    untimed_seconds = 0.0  # packets without timestamps, counted by their own duration
    time_base = audio.time_base
    try:
        for i, packet in enumerate(container.demux(audio)):
            if packet.size == 0:  # the flush packet at the end
                continue
            if i < _PACKETS_TO_DECODE or not frames:
                try:
                    for frame in packet.decode():
                        frames += 1
                        if frame.sample_rate:
                            decoded_seconds += frame.samples / frame.sample_rate
                except av.error.FFmpegError:
                    if i >= _PACKETS_TO_DECODE:
                        break
                    continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            length = packet.duration or 0
            if stamp is None or time_base is None:
                if time_base is not None and length:
                    untimed_seconds += float(length * time_base)
                continue
            first = stamp if first is None else min(first, stamp)
            end = stamp + length
            last_end = end if last_end is None else max(last_end, end)
    except av.error.FFmpegError:
        pass  # a damaged tail: what was read before it is the audio there is
    if not frames:
        raise NotMedia("no decodable audio")
    measured = untimed_seconds
    if first is not None and last_end is not None and time_base is not None:
        # Negative timestamps are encoder priming (AAC in MP4): not part of the audio.
        first = max(first, 0) if last_end > 0 else first
        measured += float((last_end - first) * time_base)
    if measured <= 0 or not math.isfinite(measured):
        # No usable timestamps at all: all we know is what was decoded.
        measured = decoded_seconds
    return measured


def _header_duration(container: av.container.InputContainer, audio: av.AudioStream) -> float | None:
    if audio.duration is not None and audio.time_base is not None:
        return float(audio.duration * audio.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


_MIME = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "aiff": "audio/aiff",
    "amr": "audio/amr",
    "w64": "audio/x-w64",
    "caf": "audio/x-caf",
    "avi": "video/x-msvideo",
    "flv": "video/x-flv",
    "mpegts": "video/mp2t",
    "mpeg": "video/mpeg",
}


def _mime_type(fmt: str, codec: str, has_video: bool) -> str:
    if fmt in _MIME:
        return _MIME[fmt]
    if fmt.startswith("mov,mp4"):
        return "video/mp4" if has_video else "audio/mp4"
    if fmt == "ogg":
        return (
            "video/ogg"
            if has_video
            else ("audio/ogg; codecs=opus" if codec == "opus" else "audio/ogg")
        )
    if fmt.startswith("matroska"):
        webm = codec in {"opus", "vorbis"}
        kind = "video" if has_video else "audio"
        return f"{kind}/webm" if webm else f"{kind}/x-matroska"
    if fmt == "asf":
        return "video/x-ms-asf" if has_video else "audio/x-ms-wma"
    return f"{'video' if has_video else 'audio'}/x-{fmt.split(',')[0]}"
