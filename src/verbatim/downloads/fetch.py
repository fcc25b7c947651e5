"""Running one download in its own process, with a hard wall-time limit.

The child (child.py) is `spawn`ed fresh for every download: nothing of the worker (database
connections, the event loop, other jobs' state) is inherited, and killing it is always safe. The
pipe is read with the event loop's reader callback, so no thread waits on a slow site.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

from verbatim.downloads.child import FetchedMedia, FetchFailed, FetchRequest, main

# Called with (downloaded bytes, total bytes or None) on every progress message, and at least
# every TICK_S seconds without one, so the caller can notice a cancellation on a silent site.
ProgressHandler = Callable[[int, int | None], Awaitable[None]]
TICK_S = 1.0

__all__ = ["FetchFailed", "FetchRequest", "FetchedMedia", "fetch"]


async def fetch(request: FetchRequest, on_progress: ProgressHandler | None = None) -> FetchedMedia:
    """Download request.url into request.workdir; raises FetchFailed with a stable code."""
    ctx = mp.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=main, args=(writer, request, os.getpid()), name="verbatim-download", daemon=True
    )
    process.start()
    writer.close()
    messages: asyncio.Queue[Any] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop.add_reader(reader.fileno(), _drain, reader, messages)
    try:
        async with asyncio.timeout(request.wall_time_s):
            return await _follow(messages, process, on_progress)
    except TimeoutError as exc:
        raise FetchFailed(
            "download_timeout",
            f"The download did not finish within {request.wall_time_s:g} s",
        ) from exc
    finally:
        loop.remove_reader(reader.fileno())
        reader.close()
        if process.is_alive():
            process.kill()
        await asyncio.to_thread(process.join, 5)
        process.close()


def _drain(reader: Connection, messages: asyncio.Queue[Any]) -> None:
    # Messages are a few hundred bytes, written whole, so a readable pipe holds whole messages.
    try:
        while reader.poll():
            messages.put_nowait(reader.recv())
    except (EOFError, OSError):
        messages.put_nowait(None)
        asyncio.get_running_loop().remove_reader(reader.fileno())


async def _follow(
    messages: asyncio.Queue[Any], process: Any, on_progress: ProgressHandler | None
) -> FetchedMedia:
    downloaded, total = 0, None
    while True:
        try:
            message = await asyncio.wait_for(messages.get(), timeout=TICK_S)
        except TimeoutError:
            if on_progress is not None:
                await on_progress(downloaded, total)
            continue
        if message is None:
            await asyncio.to_thread(process.join, 5)
            raise FetchFailed(
                "download_failed",
                f"The download process ended unexpectedly (exit code {process.exitcode})",
            )
        kind = message[0]
        if kind == "progress":
            downloaded, total = message[1], message[2]
            if on_progress is not None:
                await on_progress(downloaded, total)
        elif kind == "done":
            media: FetchedMedia = message[1]
            return media
        elif kind == "error":
            raise FetchFailed(message[1], message[2], transient=message[3])
