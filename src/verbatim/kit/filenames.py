"""Names that came from a client: a cleaned display name to store and show, and a strictly safe
ASCII name for storage keys and header fallbacks.

A client's name is shown back to people (lists, `Content-Disposition`), so it must not carry what
makes a name lie: path components (`../`), control characters, bidirectional overrides that
reverse how it reads (`evil\u202ewav.exe`), NUL bytes (PostgreSQL refuses them in text).
"""

from __future__ import annotations

import re
import unicodedata

DISPLAY_NAME_MAX = 200  # characters; the database column holds 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Bidirectional controls (embeddings, overrides, isolates, marks): they change how a name reads.
_BIDI = dict.fromkeys(
    map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), None
)


def _strip_path(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _bounded(name: str, max_length: int) -> str:
    """At most max_length characters, keeping a short extension."""
    if len(name) <= max_length:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem and len(ext) <= 10:
        return stem[: max_length - len(ext) - 1] + dot + ext
    return name[:max_length]


def display_name(name: str, default: str = "audio", max_length: int = DISPLAY_NAME_MAX) -> str:
    """The name as people should see it: the last path component, NFC, without control,
    bidirectional-override or other invisible format characters, trimmed and bounded."""
    name = unicodedata.normalize("NFC", _strip_path(name)).translate(_BIDI)
    name = " ".join(name.split())  # any run of whitespace (tabs, newlines) becomes one space
    name = "".join(
        ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    name = name.strip(" .")  # no "..", no hidden dot-files, no trailing dots (Windows)
    return _bounded(name, max_length) or default


def safe_filename(name: str, max_length: int = 100) -> str:
    """A name safe in any filesystem and URL: ASCII letters, digits, dot, dash, underscore."""
    name = _strip_path(name)
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", name).strip("._-")
    return _bounded(name, max_length) or "audio"


def clean_text(value: str) -> str:
    """Free text from a client without NUL and other control characters."""
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cc")
