"""A webhook receiver on loopback that verifies Standard Webhooks signatures the way a user's
server would, with the official `standardwebhooks` package
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).

Each path behaves as a test scripts it: answer 200, fail with 500 the first N times, hang the
first N times for S seconds, or redirect. A threaded server: it keeps answering while the
test's event loop waits, and while a worker in another process is killed mid-request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: Any = None  # the parsed payload when the signature checked out
    error: str | None = None


@dataclass
class Script:
    fail_times: int = 0  # answer 500 this many times first
    hang_times: int = 0  # sleep hang_s before answering this many times first
    hang_s: float = 0.0
    redirect_to: str | None = None
    seen: int = 0


@dataclass
class Receiver:
    host: str = "127.0.0.2"
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    scripts: dict[str, Script] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, path: str, **kw: Any) -> str:
        self.scripts[path] = Script(**kw)
        return self.url + path

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                got = Received(self.path, headers, body)
                if receiver.secret is not None:
                    try:
                        got.verified = Webhook(receiver.secret).verify(body, headers)
                    except Exception as exc:
                        got.error = f"{type(exc).__name__}: {exc}"
                script = receiver.scripts.setdefault(self.path, Script())
                with receiver.lock:
                    receiver.received.append(got)
                    script.seen += 1
                    n = script.seen
                if n <= script.hang_times:
                    time.sleep(script.hang_s)
                if script.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", script.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 500 if n <= script.fail_times else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                with contextlib.suppress(OSError):  # the sender gave up (timeout) or died
                    self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
