"""The PostgreSQL text search configuration for a transcript's language.

Chunks store it (`transcription_chunk.ts_config`) and their `tsv` is built with it, so English
words are stemmed as English ("moving" matches "move"). Languages PostgreSQL has no
configuration for, and unknown languages, use `simple` (lower-cased words, no stemming, no stop
words). A search builds its `tsquery` with the same configuration as the rows it matches.
"""

from __future__ import annotations

# ISO 639-1 codes (what faster-whisper reports) to PostgreSQL 16+'s built-in configurations.
TS_CONFIGS: dict[str, str] = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
DEFAULT_TS_CONFIG = "simple"


def ts_config_for(language: str | None) -> str:
    """`english` for "en" or "en-US", `simple` for anything without a configuration."""
    if not language:
        return DEFAULT_TS_CONFIG
    base = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return TS_CONFIGS.get(base, DEFAULT_TS_CONFIG)
