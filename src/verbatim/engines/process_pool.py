"""Speech recognition in worker processes that load the model once and keep it.

The event loop never runs the model: each engine process serves one transcription at a time over
a pipe, streaming progress messages and then the result. Cancelling kills the process (the model
cannot be interrupted mid-segment); the pool starts a fresh one when needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import structlog

from verbatim.engines.base import (
    EngineError,
    EngineResult,
    ModelRef,
    Segment,
    TranscribeOptions,
)

log = structlog.get_logger(__name__)

ProgressHandler = Callable[[float, float, str], Awaitable[None]]  # (done, total, stage)
SegmentHandler = Callable[[Segment], Awaitable[None]]  # a segment as soon as it is decoded


@dataclass(frozen=True)
class EngineConfig:
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    batch_size: int = 0  # 0: sequential; N: BatchedInferencePipeline, N chunks at once


class EngineCrashed(EngineError):
    def __init__(self, message: str) -> None:
        super().__init__("engine_crashed", message, transient=True)


def _watch_parent(parent_pid: int) -> None:
    # A SIGKILLed worker cannot stop its children: they notice and leave on their own.
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def _serve(
    conn: Connection, config: EngineConfig, preload: ModelRef | None, parent_pid: int
) -> None:
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    from verbatim.engines.faster_whisper_engine import FasterWhisperEngine

    engine = FasterWhisperEngine(
        config.device, config.compute_type, config.cpu_threads, config.batch_size
    )
    if preload is not None:
        with contextlib.suppress(EngineError):  # reported when a job asks for it
            engine.load(preload)
    conn.send(("ready",))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        model, path, options = request
        last_sent = 0.0
        last_stage = "transcribing"

        def progress(done: float, total: float, stage: str = "transcribing") -> None:
            nonlocal last_sent, last_stage
            now = time.monotonic()
            # A new stage is always reported; progress within one at most twice a second.
            if now - last_sent >= 0.5 or stage != last_stage:
                last_sent, last_stage = now, stage
                conn.send(("progress", done, total, stage))

        def segment(seg: Segment) -> None:
            conn.send(("segment", seg))

        on_segment = segment if options.stream_segments and options.dialogue is None else None
        try:
            result = engine.transcribe(model, path, options, progress, progress, on_segment)
        except EngineError as exc:
            conn.send(("error", exc.code, exc.message, exc.transient))
        except Exception as exc:
            conn.send(("error", "engine_error", f"{exc.__class__.__name__}: {exc}", True))
        else:
            conn.send(("result", result))


class EngineProcess:
    def __init__(self, config: EngineConfig, preload: ModelRef | None) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve,
            args=(child_conn, config, preload, os.getpid()),
            name="verbatim-engine",
            daemon=True,
        )
        self._process.start()
        child_conn.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.is_alive()

    async def _recv(self) -> Any:
        try:
            return await asyncio.to_thread(self._conn.recv)
        except (EOFError, OSError) as exc:
            raise EngineCrashed("the engine process exited unexpectedly") from exc

    async def wait_ready(self) -> None:
        message = await self._recv()
        assert message[0] == "ready"

    async def transcribe(
        self,
        model: ModelRef,
        audio_path: str,
        options: TranscribeOptions,
        on_progress: ProgressHandler | None = None,
        on_segment: SegmentHandler | None = None,
    ) -> EngineResult:
        self._conn.send((model, audio_path, options))
        while True:
            message = await self._recv()
            kind = message[0]
            if kind == "progress" and on_progress is not None:
                await on_progress(message[1], message[2], message[3])
            elif kind == "segment" and on_segment is not None:
                await on_segment(message[1])
            elif kind == "result":
                result: EngineResult = message[1]
                return result
            elif kind == "error":
                raise EngineError(message[1], message[2], transient=message[3])

    def kill(self) -> None:
        """Stop the process at once. Never waits: it is called on the event loop, and the exit
        is collected by a short-lived thread (join() can block for seconds)."""
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()
        threading.Thread(target=self.join, name="verbatim-engine-reaper", daemon=True).start()

    def join(self, timeout: float = 5.0) -> None:
        self._process.join(timeout=timeout)


class EnginePool:
    """At most `size` transcriptions at once, each in its own long-lived process."""

    def __init__(self, size: int, config: EngineConfig, preload: ModelRef | None = None) -> None:
        self.size = size
        self.config = config
        self.preload = preload
        self._idle: asyncio.Queue[EngineProcess | None] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(None)  # a slot; its process starts on first use
        self._all: set[EngineProcess] = set()

    async def _start(self) -> EngineProcess:
        proc = EngineProcess(self.config, self.preload)
        self._all.add(proc)
        try:
            await proc.wait_ready()
        except EngineCrashed:
            self._discard(proc)
            raise
        return proc

    def _discard(self, proc: EngineProcess) -> None:
        proc.kill()
        self._all.discard(proc)

    async def warm(self) -> None:
        """Start every process now, so the first job does not pay for model loading."""
        slots = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        started = await asyncio.gather(
            *(self._start() if s is None else _same(s) for s in slots), return_exceptions=True
        )
        for item in started:
            self._idle.put_nowait(item if isinstance(item, EngineProcess) else None)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[EngineProcess]:
        slot = await self._idle.get()
        proc: EngineProcess | None = None
        try:
            proc = slot if slot is not None and slot.alive() else await self._start()
            yield proc
        except EngineError as exc:
            # A refused input leaves the process healthy; a crash does not.
            if isinstance(exc, EngineCrashed) and proc is not None:
                self._discard(proc)
                proc = None
            raise
        except BaseException:
            # Cancelled mid-transcription: the model cannot be interrupted, so drop the process.
            if proc is not None:
                self._discard(proc)
            proc = None
            raise
        finally:
            self._idle.put_nowait(proc)

    async def close(self) -> None:
        procs = list(self._all)
        for proc in procs:
            self._discard(proc)
        await asyncio.gather(*(asyncio.to_thread(proc.join) for proc in procs))


async def _same(proc: EngineProcess) -> EngineProcess:
    return proc
