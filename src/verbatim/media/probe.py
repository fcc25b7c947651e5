"""What a file really is, from its bytes (PyAV), never from its name or the client's MIME type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
from av.stream import Disposition

# Decoding a few packets proves the audio is real, not just a plausible header.
_PACKETS_TO_DECODE = 50


class NotMedia(Exception):
    """The file is not decodable audio, or video with an audio track."""


@dataclass(frozen=True)
class ProbeResult:
    container: str
    mime_type: str
    codec: str
    duration: float | None
    sample_rate: int | None
    channels: int | None
    has_video: bool


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
        decoded_seconds = _decode_some(container, audio)
        duration = _duration(container, audio)
        if duration is None or duration <= 0:
            duration = decoded_seconds or None
        fmt = container.format.name
        codec = audio.codec_context.codec.canonical_name
        return ProbeResult(
            container=fmt,
            mime_type=_mime_type(fmt, codec, has_video),
            codec=codec,
            duration=round(duration, 3) if duration else None,
            sample_rate=audio.codec_context.sample_rate or None,
            channels=audio.codec_context.channels or None,
            has_video=has_video,
        )


def _decode_some(container: av.container.InputContainer, audio: av.AudioStream) -> float:
    frames = 0
    seconds = 0.0
    try:
        for i, packet in enumerate(container.demux(audio)):
            for frame in packet.decode():
                frames += 1
                if frame.sample_rate:
                    seconds += frame.samples / frame.sample_rate
            if i >= _PACKETS_TO_DECODE and frames:
                break
    except av.error.FFmpegError as exc:
        if not frames:
            raise NotMedia(f"audio is not decodable: {exc.__class__.__name__}") from exc
    if not frames:
        raise NotMedia("no decodable audio")
    return seconds


def _duration(container: av.container.InputContainer, audio: av.AudioStream) -> float | None:
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
