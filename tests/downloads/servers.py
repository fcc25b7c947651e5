"""Local HTTP servers that play the sites a download meets: media files, pages with <audio>,
redirects, slow and oversized answers. Bound to 127.0.0.x addresses (Linux routes all of 127/8
to loopback), so one address can be allow-listed and another left blocked. Every request is
recorded, so a test can prove a blocked server was never reached."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES

CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".flac": "audio/flac",
}


HLS_SEGMENTS = 3


class _Handler(http.server.BaseHTTPRequestHandler):
    server: MediaServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        self.server.hits.append(self.path)
        segments = [s for s in parts.path.split("/") if s]
        route = segments[0] if segments else ""
        try:
            if route == "media" and len(segments) == 2:
                self._file(FIXTURES / segments[1])
            elif route == "page" and len(segments) == 2:
                self._page(segments[1])
            elif route == "redirect":
                self._redirect(query["to"][0], int(query.get("code", ["302"])[0]))
            elif route == "chain" and len(segments) == 3:
                hops, name = int(segments[1]), segments[2]
                self._redirect(f"/chain/{hops - 1}/{name}" if hops > 1 else f"/media/{name}")
            elif route == "slow-media" and len(segments) == 2:
                self._file(FIXTURES / segments[1], rate=float(query.get("bps", ["60000"])[0]))
            elif route == "hls" and len(segments) == 2:
                name = segments[1].removesuffix(".m3u8")
                self._hls_playlist(name, query.get("segment_base", [""])[0])
            elif route == "hls-segment" and len(segments) == 3:
                self._hls_segment(segments[1], int(segments[2]))
            elif route == "flaky" and len(segments) == 2:
                # Fails with 503 the first `fail` times it is asked, then serves the file.
                failures = self.server.failures.setdefault(self.path, 0)
                if failures < int(query.get("fail", ["1"])[0]):
                    self.server.failures[self.path] = failures + 1
                    self._status(503)
                else:
                    self._file(FIXTURES / segments[1])
            elif route == "trickle":
                self._trickle(declare_length=True)
            elif route == "slow":
                self._trickle(declare_length=False)
            elif route == "huge":
                self._huge()
            elif route == "raw":
                self._html(query["html"][0])
            elif route == "nomedia":
                self._html("<html><head><title>Nothing</title></head><body>Hello</body></html>")
            else:
                self._status(404)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the download process was killed, or refused the rest

    def _status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _file(self, path: Path, rate: float | None = None) -> None:
        if not path.is_file():
            self._status(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if rate is None:
            self.wfile.write(data)
            return
        step = max(1, int(rate / 10))
        for i in range(0, len(data), step):
            self.wfile.write(data[i : i + step])
            self.wfile.flush()
            time.sleep(0.1)

    def _page(self, name: str) -> None:
        tag = "video" if name.endswith(".mp4") else "audio"
        self._html(
            f"<html><head><title>A talk about {name}</title></head><body>"
            f'<h1>Listen</h1><{tag} controls src="/media/{name}"></{tag}></body></html>'
        )

    def _html(self, body: str) -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str, code: int = 302) -> None:
        self.send_response(code)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _hls_playlist(self, name: str, base: str) -> None:
        # Packed-audio HLS: the segments are byte ranges of one file, joined they are the file.
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4"]
        lines += ["#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
        for i in range(HLS_SEGMENTS):
            lines += ["#EXTINF:3.0,", f"{base}/hls-segment/{name}/{i}"]
        lines.append("#EXT-X-ENDLIST")
        data = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.apple.mpegurl")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _hls_segment(self, name: str, index: int) -> None:
        data = (FIXTURES / name).read_bytes()
        step = -(-len(data) // HLS_SEGMENTS)
        part = data[index * step : (index + 1) * step]
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def _trickle(self, declare_length: bool) -> None:
        # A site that answers, but slower than any time limit: a byte now and then. Without a
        # declared length only the wall-time limit can stop it.
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        if declare_length:
            self.send_header("Content-Length", str(10_000_000))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        while not self.server.stopping.is_set():
            self.wfile.write(b"\0" * 16)
            self.wfile.flush()
            time.sleep(0.2)

    def _huge(self) -> None:
        # No Content-Length and no end: only a byte count stops it.
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"\xff\xfb\x90\x00" * 16384
        while not self.server.stopping.is_set():
            self.wfile.write(chunk)


class MediaServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.hits: list[str] = []
        self.failures: dict[str, int] = {}
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a download process killed mid-request is expected here

    @property
    def host(self) -> str:
        return str(self.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def page_url(self, html: str) -> str:
        """A URL whose answer is this HTML."""
        return self.url("/raw?html=" + urllib.parse.quote(html))

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
