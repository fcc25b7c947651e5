from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from verbatim.config import Settings


def test_secret_file_is_created_0600_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kw: Any) -> int:
        calls.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *args, **kw)

    monkeypatch.setattr(os, "open", spy)
    old_umask = os.umask(0)  # a write-then-chmod would leave the file world-readable meanwhile
    try:
        settings = Settings(env="test", data_dir=tmp_path / "data", secret_key=None)
        secret = settings.resolved_secret_key()
    finally:
        os.umask(old_umask)
    path = tmp_path / "data" / "secret_key"
    created = [c for c in calls if c[0] == str(path)]
    assert created, "the secret file must be created with os.open and its final mode"
    _, flags, mode = created[0]
    assert flags & os.O_CREAT and flags & os.O_EXCL
    assert mode == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret) >= 32
    # Read back, never regenerated.
    assert Settings(env="test", data_dir=tmp_path / "data").resolved_secret_key() == secret


def test_an_existing_secret_file_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret_key").write_text("kept-" + "k" * 40 + "\n")
    assert Settings(env="test", data_dir=data).resolved_secret_key() == "kept-" + "k" * 40
