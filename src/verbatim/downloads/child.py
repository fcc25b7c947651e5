"""The download process: one URL through yt-dlp behind the network guard, then exit.

Runs in a `spawn`ed process (fetch.py starts it) so that a hostile or hung site, a parser bug or
a memory blow-up costs a process that is killed, never a worker or the API. It talks to its parent
over a one-way pipe: ("progress", downloaded, total), then ("done", FetchedMedia) or
("error", code, message, transient). Keep imports light: yt-dlp is imported only after the guard.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import ip_network
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from verbatim.downloads import guard

PROGRESS_EVERY_S = 0.5
# Protocols the native downloaders fetch through the guarded HTTP stack (m3u8 is forced native).
ALLOWED_PROTOCOLS = frozenset({"http", "https", "m3u8", "m3u8_native", "http_dash_segments"})
_PROTOCOL_FILTER = "[protocol~='^(https?|m3u8(_native)?|http_dash_segments)$']"
# Audio alone when the site offers it, else the best single file with sound ("best" excludes
# video-only formats); never a merge, which needs ffmpeg, and ffmpeg may not run here.
FORMAT = f"bestaudio{_PROTOCOL_FILTER}/best{_PROTOCOL_FILTER}"
# Extractors that only wrap a media URL found on a page: the platform is the open web.
_GENERIC = {"generic", "html5mediaembed"}
MAX_TITLE = 500


@dataclass(frozen=True)
class FetchRequest:
    url: str
    workdir: str
    max_bytes: int
    max_duration_s: float
    wall_time_s: float
    allow_networks: tuple[str, ...] = ()

    @property
    def socket_timeout_s(self) -> float:
        return max(1.0, min(30.0, self.wall_time_s / 2))


@dataclass(frozen=True)
class FetchedMedia:
    path: str
    title: str | None
    platform: str
    ext: str
    duration: float | None
    webpage_url: str | None


class FetchFailed(Exception):
    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


def main(conn: Connection, request: FetchRequest, parent_pid: int) -> None:
    """Process entry point."""
    network_guard = guard.install([ip_network(n) for n in request.allow_networks])
    _limit_self(request, parent_pid)
    last_sent = 0.0

    def progress(downloaded: int, total: int | None) -> None:
        nonlocal last_sent
        now = time.monotonic()
        if now - last_sent >= PROGRESS_EVERY_S:
            last_sent = now
            conn.send(("progress", downloaded, total))

    try:
        media = download(request, progress)
    except BaseException as exc:
        failure = classify(exc, network_guard)
        conn.send(("error", failure.code, failure.message[:1000], failure.transient))
    else:
        conn.send(("done", media))
    finally:
        conn.close()


def _limit_self(request: FetchRequest, parent_pid: int) -> None:
    # The kernel stops any file from growing far past the limit, whatever yt-dlp does; the write
    # then fails with EFBIG instead of killing the process, so the error is reported.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = request.max_bytes + 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Backstops if the parent cannot kill us: a wall-clock alarm, and leaving with the parent.
    signal.alarm(int(request.wall_time_s) + 30)

    def watch_parent() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch_parent, daemon=True).start()


class _Logger:
    """yt-dlp's output goes nowhere (the job records the outcome); errors arrive as exceptions."""

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        pass


def options(request: FetchRequest, progress: Callable[[int, int | None], None]) -> dict[str, Any]:
    """yt-dlp options. Every choice here is a security or resource decision; see
    docs/decisions/0002-url-downloads.md."""
    workdir = Path(request.workdir)

    def on_progress(status: dict[str, Any]) -> None:
        downloaded = int(status.get("downloaded_bytes") or 0)
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        # Content-Length is known after the first block; a stream without it is cut here.
        if downloaded > request.max_bytes or (status.get("total_bytes") or 0) > request.max_bytes:
            raise _too_large(request)
        progress(downloaded, int(total) if total else None)

    def match_filter(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
        check_entry(info, request, incomplete=incomplete)
        return None

    return {
        "format": FORMAT,
        "noplaylist": True,
        "playlist_items": "1",
        "lazy_playlist": True,
        "match_filter": match_filter,
        "progress_hooks": [on_progress],
        "outtmpl": {"default": "media.%(ext)s"},
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "restrictfilenames": True,
        "overwrites": True,
        "continuedl": False,
        "updatetime": False,
        "cachedir": False,
        "quiet": True,
        "noprogress": True,
        "no_warnings": True,
        "color": "no_color",
        "logger": _Logger(),
        "socket_timeout": request.socket_timeout_s,
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        "file_access_retries": 0,
        # Only yt-dlp's own downloaders, whose requests pass the guard.
        "external_downloader": {"default": "native"},
        "hls_prefer_native": True,
        "postprocessors": [],
        "fixup": "never",
        "js_runtimes": {},
        "remote_components": [],
        "enable_file_urls": False,
        # Environment proxies would make the guard see the proxy, not the destination.
        "proxy": "",
        "geo_bypass": False,
        "usenetrc": False,
        "allow_unplayable_formats": False,
        "check_formats": False,
        "writesubtitles": False,
        "writethumbnail": False,
        "writeinfojson": False,
    }


def check_entry(info: dict[str, Any], request: FetchRequest, *, incomplete: bool) -> None:
    """Refuse what must not be downloaded, before any media byte is fetched."""
    if info.get("playlist_index") is not None or info.get("playlist_id") is not None:
        raise FetchFailed("playlist_not_supported", "Playlists are not supported; link one item")
    if info.get("is_live") or info.get("live_status") in ("is_live", "is_upcoming"):
        raise FetchFailed("unsupported_url", "Live streams are not supported")
    duration = info.get("duration")
    if isinstance(duration, int | float) and duration > request.max_duration_s:
        raise FetchFailed(
            "media_too_long",
            f"The media lasts {duration:.0f} s; the limit is {request.max_duration_s:.0f} s",
        )
    if incomplete:
        return
    size = info.get("filesize") or info.get("filesize_approx")
    if isinstance(size, int | float) and size > request.max_bytes:
        raise _too_large(request)
    protocols = str(info.get("protocol") or "https").split("+")
    if not set(protocols) <= ALLOWED_PROTOCOLS:
        raise FetchFailed(
            "unsupported_url", f"The media is only offered over {'+'.join(protocols)}"
        )


def _too_large(request: FetchRequest) -> FetchFailed:
    return FetchFailed(
        "file_too_large", f"The media is larger than the {request.max_bytes} byte limit"
    )


def download(request: FetchRequest, progress: Callable[[int, int | None], None]) -> FetchedMedia:
    os.environ["YTDLP_NO_PLUGINS"] = "1"  # no code from plugin folders in this process
    import yt_dlp

    with yt_dlp.YoutubeDL(options(request, progress)) as ydl:
        info = ydl.extract_info(request.url, download=True)
    if not info:
        raise FetchFailed("download_failed", "Nothing was downloaded")
    downloads = info.get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads else None
    workdir = Path(request.workdir).resolve()
    if path is None or not path.is_file() or path.is_symlink():
        raise FetchFailed("download_failed", "The download produced no file")
    if not path.resolve().is_relative_to(workdir):
        raise FetchFailed("download_failed", "The download was written outside its folder")
    if path.stat().st_size > request.max_bytes:
        raise _too_large(request)
    if path.stat().st_size == 0:
        raise FetchFailed("no_audio_stream", "The downloaded file is empty")
    extractor = str(info.get("extractor_key") or info.get("extractor") or "generic").lower()
    title = info.get("title")
    return FetchedMedia(
        path=str(path),
        title=_clean(title)[:MAX_TITLE] if isinstance(title, str) else None,
        platform="generic" if extractor in _GENERIC else extractor.split(":", 1)[0][:100],
        ext=str(info.get("ext") or path.suffix.lstrip(".") or "bin")[:10],
        duration=float(info["duration"]) if isinstance(info.get("duration"), int | float) else None,
        webpage_url=info.get("webpage_url"),
    )


def _clean(text: str) -> str:
    return "".join(c for c in text if c.isprintable()).strip()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (yt-dlp nests errors in exc_info and cause)."""
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < 50:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        exc_info = getattr(current, "exc_info", None)
        linked = [
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            getattr(current, "cause", None),
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
        ]
        stack.extend(e for e in linked if isinstance(e, BaseException))


def classify(exc: BaseException, network_guard: guard.Guard | None = None) -> FetchFailed:
    """A stable error code for whatever stopped the download."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError
    from yt_dlp.utils import UnsupportedError

    causes = list(_causes(exc))
    for e in causes:
        if isinstance(e, FetchFailed):
            return e
    for e in causes:
        if isinstance(e, guard.BlockedDestination):
            return FetchFailed("blocked_destination", _blocked_message(str(e)))
    for e in causes:
        if isinstance(e, HTTPError):
            if 300 <= e.status < 400 and not e.redirect_loop:
                # urllib itself refuses to follow a redirect to file:, data: and the like.
                return FetchFailed(
                    "blocked_destination",
                    "The download was refused: a redirect to a scheme other than http or https",
                )
            return _http_failure(e.status)
    for e in causes:
        if isinstance(e, UnsupportedError):
            return FetchFailed("unsupported_url", "No media was found at this link")
        if isinstance(e, OSError) and e.errno == errno.EFBIG:
            return FetchFailed("file_too_large", "The media is larger than the size limit")
    # yt-dlp sometimes keeps only the text of a refused connection.
    if network_guard is not None and network_guard.refusals:
        return FetchFailed("blocked_destination", _blocked_message(network_guard.refusals[-1]))
    text = _message(exc)
    lowered = text.lower()
    if "requested format is not available" in lowered or "no video formats" in lowered:
        return FetchFailed("no_audio_stream", "The link offers no downloadable audio")
    for e in causes:
        if isinstance(e, socket.gaierror):
            transient = e.errno == socket.EAI_AGAIN
            return FetchFailed(
                "download_failed", "The host name does not resolve", transient=transient
            )
        if isinstance(e, TimeoutError | socket.timeout):
            return FetchFailed("download_timeout", "The site stopped answering", transient=True)
    for e in causes:
        if isinstance(e, TransportError | ConnectionError):
            return FetchFailed("download_failed", f"Network error: {text}", transient=True)
    return FetchFailed("download_failed", text or exc.__class__.__name__)


def _http_failure(status: int) -> FetchFailed:
    if status in (404, 410):
        return FetchFailed("source_not_found", f"The site answered HTTP {status}: nothing there")
    transient = status == 429 or status >= 500
    return FetchFailed("download_failed", f"The site answered HTTP {status}", transient=transient)


def _blocked_message(reason: str) -> str:
    return "The download was refused: " + reason.removeprefix("blocked destination: ")


def _message(exc: BaseException) -> str:
    text = str(exc)
    with contextlib.suppress(Exception):
        from yt_dlp.utils import remove_terminal_sequences

        text = remove_terminal_sequences(text)
    return text.removeprefix("ERROR: ").strip()
