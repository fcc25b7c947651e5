"""Probing in child processes, so libav parsing a hostile file cannot take the API down.

A small pool of long-lived `spawn`ed workers (`VERBATIM_PROBE_WORKERS`, default 2); each probe
takes an idle worker, sends it a path over a pipe and waits (in a thread) for the answer. A worker
that dies (a segfault, an abort in libav) or runs past `VERBATIM_PROBE_TIMEOUT_S` is killed and
replaced; only that probe fails, with 422 `media_probe_failed`. Workers hold no database
connection, no secrets and no sockets: only PyAV.

Measured (bench/probe_isolation.py, 2 shared cores, medians): a 6 s WAV 15.3 ms in a thread,
15.5 ms in the child (+0.2 ms); a 6 s MP3 5.2 / 6.2 ms (+1 ms). An hour of WAV (115 MB) 731 /
850 ms and of MP3 (29 MB) 890 / 1194 ms: there the difference is within the run-to-run noise of
the busy machine (p90s 954 / 950 and 1333 / 1289 ms); the pipe carries a path and a small result,
never media. A worker's start-up (spawn + importing PyAV: 1 to 4 s on a loaded machine) is paid
on the first probe after start or after a crash, unless `warm()` ran at start-up.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import structlog

from verbatim.errors import UnsupportedMedia
from verbatim.media.probe import NotMedia, ProbeResult, TooShort, probe

log = structlog.get_logger(__name__)

_WAIT_FOR_IDLE_S = 0.01
_START_TIMEOUT_S = 60.0


# Both are kinds of UnsupportedMedia, so every caller that already handles "not usable media"
# (the download job, a direct upload's rejection) handles them too; their status and code differ.
class ProbeFailed(UnsupportedMedia):
    status_code = 422
    code = "media_probe_failed"
    message = "The file could not be examined (its decoder crashed or took too long)"


class MediaTooShort(UnsupportedMedia):
    status_code = 422
    code = "media_too_short"
    message = "The file holds (almost) no audio"


ProbeFunc = Callable[[Path], ProbeResult]


def _serve(conn: Connection, func: ProbeFunc) -> None:
    """The child's loop: a path in, ("ok", result) or an error tuple out."""
    conn.send(("ready",))
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):
            return
        answer: tuple[Any, ...]
        try:
            answer = ("ok", func(Path(path)))
        except TooShort as exc:
            answer = ("too_short", exc.duration)
        except NotMedia as exc:
            answer = ("not_media", str(exc))
        except Exception as exc:  # a library bug: report it, keep serving
            answer = ("error", f"{exc.__class__.__name__}: {exc}")
        conn.send(answer)


class _Crashed(Exception):
    pass


class _Worker:
    def __init__(self, func: ProbeFunc) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=_serve, args=(child, func), name="verbatim-probe", daemon=True
        )
        self.process.start()
        child.close()
        self.conn = parent
        # Start-up (importing PyAV) does not count against a probe's timeout.
        try:
            ready = parent.poll(_START_TIMEOUT_S) and parent.recv() == ("ready",)
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            raise ProbeFailed(details={"reason": "worker_start_failed"})

    def call(self, path: Path, timeout_s: float) -> tuple[Any, ...]:
        try:
            self.conn.send(str(path))
            arrived = self.conn.poll(timeout_s)
        except OSError as exc:  # BrokenPipeError: it died between two probes
            raise _Crashed from exc
        if not arrived:
            raise TimeoutError
        try:
            answer: tuple[Any, ...] = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise _Crashed from exc
        return answer

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class ProbePool:
    def __init__(self, size: int = 2, timeout_s: float = 300.0, func: ProbeFunc = probe) -> None:
        self.size = max(1, size)
        self.timeout_s = timeout_s
        self.func = func
        self._lock = threading.Lock()
        self._idle: list[_Worker | None] = [None] * self.size  # None: not started (yet/again)
        self._busy = 0

    def _take(self) -> tuple[bool, _Worker | None]:
        """(True, an idle slot: a worker or None to start one), or (False, None) when all
        are busy."""
        with self._lock:
            if not self._idle:
                return False, None
            self._busy += 1
            return True, self._idle.pop()

    def _give_back(self, worker: _Worker | None) -> None:
        with self._lock:
            self._busy -= 1
            self._idle.append(worker)

    def _run(self, slot: _Worker | None, path: Path) -> tuple[Any, ...]:
        """In a thread: start the worker if needed, probe; a dead or hung worker is killed.
        The slot goes back to the pool here, so a cancelled request never leaks a worker."""
        worker = slot
        try:
            if worker is None or not worker.process.is_alive():
                if worker is not None:
                    worker.kill()
                worker = _Worker(self.func)
            return worker.call(path, self.timeout_s)
        except TimeoutError:
            log.warning("probe_timeout", path=path.name, timeout_s=self.timeout_s)
            assert worker is not None
            worker.kill()
            worker = None
            return ("failed", "timeout")
        except _Crashed:
            assert worker is not None
            worker.process.join(5)
            log.error("probe_crashed", path=path.name, exitcode=worker.process.exitcode)
            worker.kill()
            worker = None
            return ("failed", "crashed")
        finally:
            self._give_back(worker)

    async def probe(self, path: Path) -> ProbeResult:
        taken, slot = self._take()
        while not taken:
            await asyncio.sleep(_WAIT_FOR_IDLE_S)
            taken, slot = self._take()
        answer = await asyncio.to_thread(self._run, slot, path)
        kind = answer[0]
        if kind == "ok":
            result: ProbeResult = answer[1]
            return result
        if kind == "too_short":
            raise MediaTooShort(details={"duration_s": answer[1]})
        if kind == "not_media":
            raise NotMedia(answer[1])
        if kind == "error":
            log.error("probe_error", path=path.name, error=answer[1])
            raise ProbeFailed(details={"reason": "error"})
        raise ProbeFailed(details={"reason": answer[1]})

    def warm(self) -> None:
        """Start every idle worker now (blocking: call it in a thread at start-up)."""
        with self._lock:
            slots = [i for i, w in enumerate(self._idle) if w is None]
        for index in slots:
            worker = _Worker(self.func)
            with self._lock:
                if index < len(self._idle) and self._idle[index] is None:
                    self._idle[index] = worker
                    continue
            worker.kill()

    def close(self) -> None:
        with self._lock:
            workers, self._idle = self._idle, [None] * self.size
        for worker in workers:
            if worker is not None:
                worker.kill()


_pool: ProbePool | None = None
_pool_lock = threading.Lock()


def default_pool() -> ProbePool:
    """The process's pool, sized from the settings of the running services (or defaults)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            size, timeout_s = 2, 300.0
            try:
                from verbatim.services import get_services

                settings = get_services().settings
                size, timeout_s = settings.probe_workers, settings.probe_timeout_s
            except RuntimeError:
                pass
            _pool = ProbePool(size, timeout_s)
        return _pool


async def probe_isolated(path: Path) -> ProbeResult:
    """`probe(path)` in a child process; NotMedia, MediaTooShort or ProbeFailed on failure."""
    return await default_pool().probe(path)
