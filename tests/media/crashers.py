"""Probe functions for tests only (never reachable from the API): they run in the probe pool's
child process and crash it the way a libav bug on a hostile file would."""

from __future__ import annotations

import os
import time
from pathlib import Path

from verbatim.media.probe import ProbeResult, probe


def abort_on_crash_name(path: Path) -> ProbeResult:
    """SIGABRT (what a failed libav assertion does) for a file whose bytes start with CRASH."""
    with path.open("rb") as handle:
        if handle.read(5) == b"CRASH":
            os.abort()
    return probe(path)


def hang_on_hang_name(path: Path) -> ProbeResult:
    with path.open("rb") as handle:
        if handle.read(4) == b"HANG":
            time.sleep(60)
    return probe(path)
