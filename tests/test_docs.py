"""Docs stay true: every setting is documented."""

from __future__ import annotations

from pathlib import Path

from verbatim.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented_in_configuration_md() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"VERBATIM_{name.upper()}" not in text]
    assert missing == [], f"settings missing from docs/configuration.md: {missing}"
