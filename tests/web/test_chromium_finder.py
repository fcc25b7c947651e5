"""The browser tests' Chromium finder: an explicit path wins, a missing one fails with what to
install, and with no Chromium anywhere and no way to install one the tests fail (never skip)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web import conftest


def test_an_explicit_chromium_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    browser = tmp_path / "chrome"
    browser.write_text("")
    monkeypatch.setenv("VERBATIM_CHROMIUM", str(browser))

    assert conftest._found() == str(browser)


def test_a_wrong_explicit_path_fails_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VERBATIM_CHROMIUM", str(tmp_path / "missing"))

    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        conftest._found()


def test_no_chromium_and_no_installer_is_a_failure_not_a_skip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VERBATIM_CHROMIUM", raising=False)
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    monkeypatch.setattr(conftest, "_playwright_bundled", lambda: None)
    monkeypatch.setattr(conftest, "_install", lambda: ["apt-get install -y chromium: exit 100"])

    with pytest.raises(pytest.fail.Exception) as failure:
        conftest.chromium_path.__wrapped__()  # type: ignore[attr-defined]

    assert "playwright install chromium" in str(failure.value)
    assert "exit 100" in str(failure.value)
