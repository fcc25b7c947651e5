"""Shared plumbing for the benchmarks: server subprocesses, clean shutdown, auth, streamed bodies.

Every server a benchmark measures is a real subprocess on a free loopback port, so the numbers
include everything a client sees (HTTP parsing, the event loop, the database) and nothing of the
benchmark's own process. Each one is always stopped: SIGINT first (a graceful uvicorn shutdown
runs the lifespan, which stops the worker, the engine processes and the embedded PostgreSQL),
then harder signals only if it hangs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
READ_CHUNK = MIB  # how much the client reads from disk per body chunk
GRACEFUL_STOP_S = 60.0


class BenchError(Exception):
    """A benchmark cannot run, or it produced a wrong result; the message says why."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """This environment minus every VERBATIM_* variable, plus `extra`.

    The service is benchmarked with its defaults (the same engine settings as the reference),
    whatever the shell running the benchmark has set.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(extra)
    return env


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in read_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def read_chunks(path: Path, size: int = READ_CHUNK) -> Iterator[bytes]:
    """The file, `size` bytes at a time: bodies are streamed from disk, never held in memory."""
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


# --- request bodies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """A request body streamed from disk, with the headers that describe it."""

    headers: dict[str, str]
    chunks: Iterator[bytes]
    length: int


def multipart_body(path: Path, field: str = "file", content_type: str = "audio/wav") -> Body:
    """`path` as the one file field of a multipart/form-data body, streamed with Content-Length.

    Built by hand (preamble, file chunks, epilogue) rather than with httpx's `files=`, so that
    the multipart and the raw uploads read the disk with exactly the same chunking and the body
    is never in memory.
    """
    boundary = f"bench-{uuid.uuid4().hex}"
    preamble = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{path.name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    epilogue = f"\r\n--{boundary}--\r\n".encode()
    length = len(preamble) + path.stat().st_size + len(epilogue)

    def chunks() -> Iterator[bytes]:
        yield preamble
        yield from read_chunks(path)
        yield epilogue

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(length),
    }
    return Body(headers=headers, chunks=chunks(), length=length)


def raw_body(path: Path, content_type: str = "application/octet-stream") -> Body:
    """`path` as a plain request body, streamed with Content-Length."""
    length = path.stat().st_size
    headers = {"Content-Type": content_type, "Content-Length": str(length)}
    return Body(headers=headers, chunks=read_chunks(path), length=length)


# --- server subprocesses --------------------------------------------------------------------


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    base_url: str
    ready_s: float = 0.0  # from spawn to the readiness check answering 200

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def start_process(
    name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path, port: int
) -> ServerProcess:
    """Spawn a server in its own session (a Ctrl-C in the terminal reaches only the benchmark,
    which then stops the server itself), its output going to `log_path`."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ServerProcess(name, proc, log_path, f"http://127.0.0.1:{port}")


def wait_until_ok(server: ServerProcess, path: str, timeout_s: float) -> float:
    """Poll GET `path` until it answers 200; the seconds that took. Fails fast if it exits."""
    started = time.perf_counter()
    last = "no answer"
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        while True:
            code = server.proc.poll()
            if code is not None:
                raise BenchError(
                    f"{server.name} exited ({code}) before it was ready; its log ends with:\n"
                    f"{server.log_tail()}"
                )
            try:
                response = client.get(path)
                if response.status_code == 200:
                    return time.perf_counter() - started
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.TransportError as exc:
                last = f"{exc.__class__.__name__}"
            if time.perf_counter() - started > timeout_s:
                raise BenchError(
                    f"{server.name} not ready after {timeout_s:.0f} s (last: {last}); "
                    f"its log ends with:\n{server.log_tail()}"
                )
            time.sleep(0.2)


def stop_process(server: ServerProcess, graceful_s: float = GRACEFUL_STOP_S) -> None:
    """SIGINT and wait (a graceful shutdown); SIGTERM, then SIGKILL, only if it hangs.

    Its descendants (engine processes, multiprocessing's resource tracker) are collected first
    and any still alive after it exited are killed, so nothing the benchmark started survives.
    """
    try:
        descendants = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    escalation = ((signal.SIGINT, graceful_s), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0))
    for sig, wait_s in escalation:
        if server.proc.poll() is not None:
            break
        server.proc.send_signal(sig)
        try:
            server.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            print(
                f"  warning: {server.name} ignored {sig.name} for {wait_s:.0f} s", file=sys.stderr
            )
    _, alive = psutil.wait_procs(descendants, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            print(f"  warning: killing leftover process {proc.pid}", file=sys.stderr)
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def ensure_postgres_stopped(pgdata: Path) -> None:
    """Stop the embedded PostgreSQL on `pgdata` if the server left it running.

    `verbatim serve` stops the PostgreSQL it started when it shuts down; this only catches a
    server that was killed. pg_ctl's fast stop first, then SIGINT (fast shutdown) to the
    postmaster named in postmaster.pid, then SIGQUIT.
    """
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    from verbatim import embedded_db

    if not embedded_db.is_running(pgdata):
        return
    print(
        f"  warning: the embedded PostgreSQL on {pgdata} is still running; stopping it",
        file=sys.stderr,
    )
    with contextlib.suppress(Exception):
        embedded_db.EmbeddedServer(pgdata=pgdata, uri="", started_here=True).stop()
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    for sig in (signal.SIGINT, signal.SIGQUIT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
            psutil.Process(pid).wait(30)
        if not psutil.pid_exists(pid):
            return


@contextlib.contextmanager
def verbatim_server(
    work_dir: Path, *, env: dict[str, str] | None = None, ready_timeout_s: float = 300.0
) -> Iterator[ServerProcess]:
    """`verbatim serve` with a fresh data directory in `work_dir`: embedded PostgreSQL, the job
    worker and its engine process inside, on a free loopback port.

    Yields once /health/ready answers 200 (the engine has loaded its model by then). Always
    stopped on the way out, together with the PostgreSQL it started. It runs in `work_dir`, so
    a `.env` in the repository does not change what is measured.
    """
    data_dir = work_dir / "verbatim-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server_env = child_env(
        VERBATIM_DATA_DIR=str(data_dir),
        VERBATIM_HOST="127.0.0.1",
        VERBATIM_PORT=str(port),
        **(env or {}),
    )
    server = start_process(
        "verbatim serve",
        [sys.executable, "-m", "verbatim.cli", "serve"],
        env=server_env,
        cwd=work_dir,
        log_path=work_dir / "verbatim-serve.log",
        port=port,
    )
    try:
        server.ready_s = wait_until_ok(server, "/health/ready", ready_timeout_s)
        yield server
    finally:
        stop_process(server)
        ensure_postgres_stopped(data_dir / "postgres")


# --- the API as a client sees it ------------------------------------------------------------


class ApiClient:
    """An httpx client logged in as a fresh user.

    One user per measured run, so an upload is never answered as a duplicate of an earlier run.
    """

    def __init__(self, base_url: str) -> None:
        # Generous read timeout: a big upload is answered only once it is stored.
        self.http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(900.0, connect=10.0))
        self.email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        self.password = uuid.uuid4().hex

    def __enter__(self) -> ApiClient:
        self.register()
        self.login()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def register(self) -> None:
        body = {"email": self.email, "password": self.password}
        expect(self.http.post("/api/v1/auth/register", json=body), 201)

    def login(self) -> None:
        body = {"email": self.email, "password": self.password}
        token = expect(self.http.post("/api/v1/auth/login", json=body), 200)["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def get_json(self, path: str) -> dict[str, Any]:
        """GET, logging in again once if the access token expired during a long run."""
        response = self.http.get(path)
        if response.status_code == 401:
            self.login()
            response = self.http.get(path)
        return expect(response, 200)

    def post_json(self, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
        return expect(self.http.post(path, json=body), status)

    def upload(self, body: Body) -> httpx.Response:
        """POST /api/v1/audio with a streamed multipart body; the raw response."""
        return self.http.post("/api/v1/audio", content=body.chunks, headers=body.headers)


def expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The JSON body, or a BenchError saying what the server answered instead."""
    if response.status_code not in statuses:
        raise BenchError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {statuses}: {response.text[:500]}"
        )
    data: dict[str, Any] = response.json()
    return data
