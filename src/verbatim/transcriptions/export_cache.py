"""Rendered exports, keyed by everything they are rendered from.

Laying out a 30,000-word SRT takes about 100 ms of CPU (issue 15); reading its rows takes a
tenth of that. An export is a pure function of its header (id, title, language, speakers,
topics...), its rows (times, text, speaker names, words) and the format, so the key is a hash
of exactly those inputs, read fresh on every request: an edit, a rename or a reprocess changes
the key, and nothing has to be invalidated. The same hash is the response's ETag.

Only long transcripts are kept (short ones render in a few milliseconds), in a byte-bounded
LRU per process (`VERBATIM_EXPORT_CACHE_MB`, 0 turns it off). The key includes the
transcription's id, so an entry is only ever served to a caller who passed that
transcription's access check.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from verbatim.transcriptions.export import ExportDocument, Rendered


def key_of(header: ExportDocument, rows: Sequence[tuple[Any, ...]], fmt: str) -> str:
    """A digest of the export's inputs (pickle of plain values: deterministic, and C-fast)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(pickle.dumps((fmt, header), protocol=pickle.HIGHEST_PROTOCOL))
    digest.update(pickle.dumps(list(rows), protocol=pickle.HIGHEST_PROTOCOL))
    return digest.hexdigest()


def _size(rendered: Rendered) -> int:
    # A str's bytes in memory are about its length for the ASCII-heavy subtitle formats.
    return len(rendered.content)


class RenderCache:
    """Least recently used renderings, at most `max_bytes` of content in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Rendered] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # renders finish in threads

    def get(self, key: str) -> Rendered | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: str, rendered: Rendered) -> None:
        size = _size(rendered)
        if not 0 < size <= self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= _size(old)
            self._entries[key] = rendered
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= _size(evicted)


renders = RenderCache(max_bytes=64 * 1024 * 1024)


def configure(max_mb: int) -> None:
    """Size the process's cache (runtime start); 0 keeps nothing."""
    global renders
    renders = RenderCache(max_bytes=max_mb * 1024 * 1024)
