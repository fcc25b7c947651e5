"""The command line, run as a user would run it: as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import FIXTURES
from tests.transcriptions.test_pipeline import cue_times


def run_cli(
    *args: str, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    return subprocess.run(
        [sys.executable, "-m", "verbatim.cli", *args],
        env={**base, "VERBATIM_LOG_JSON": "true", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.slow
def test_transcribe_a_local_file_without_a_server(tmp_path: Path) -> None:
    r = run_cli("transcribe", str(FIXTURES / "speech.mp3"), "--format", "srt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "quick brown fox" in r.stdout.lower()
    times = cue_times(r.stdout)
    assert times and all(a < b for a, b in times)
    # Nothing was created where it ran: no database, no data directory.
    assert list(tmp_path.iterdir()) == []

    out = tmp_path / "out.json"
    r = run_cli(
        "transcribe",
        str(FIXTURES / "speech.wav"),
        "-f",
        "json",
        "-o",
        str(out),
        "--language",
        "en",
        "--model",
        "tiny.en",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["language"] == "en" and doc["model"] == "tiny.en"
    assert doc["segments"][0]["words"]


@pytest.mark.slow
def test_transcribe_refuses_bad_input() -> None:
    r = run_cli("transcribe", str(FIXTURES / "not_audio.mp3"))
    assert r.returncode == 1 and "not audio" in r.stderr
    r = run_cli("transcribe", str(FIXTURES / "speech.wav"), "--format", "pdf")
    assert r.returncode == 2 and "unknown format" in r.stderr
    r = run_cli("transcribe", str(FIXTURES / "speech.wav"), "--model", "large-v9")
    assert r.returncode == 1 and "cannot be loaded" in r.stderr
    r = run_cli("transcribe", "/nonexistent/file.wav")
    assert r.returncode == 2


@pytest.mark.slow
def test_migrate_and_user_create(database_url: str, tmp_path: Path) -> None:
    env = {"VERBATIM_DATABASE_URL": database_url, "VERBATIM_DATA_DIR": str(tmp_path)}
    r = run_cli("migrate", env=env)
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout
    r = run_cli(
        "user",
        "create",
        "--email",
        "Admin@Example.com",
        "--admin",
        "--password",
        "a strong password",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            'SELECT role, password_hash, tenant_id FROM "user" WHERE email = %s',
            ("admin@example.com",),
        ).fetchone()
    assert row is not None
    assert row[0] == "admin" and row[1].startswith("$argon2id$") and row[2]

    r = run_cli(
        "user", "create", "--email", "admin@example.com", "--password", "another one!", env=env
    )
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run_cli("user", "create", "--email", "x@example.com", "--password", "short", env=env)
    assert r.returncode == 2


@pytest.mark.slow
def test_transcribe_dialogue_offline(tmp_path: Path) -> None:
    out = tmp_path / "dialogue.docx"
    r = run_cli("transcribe", str(FIXTURES / "dialogue.wav"), "--dialogue", "-f", "docx")
    assert r.returncode == 2 and "--output" in r.stderr  # binary never goes to a terminal
    r = run_cli(
        "transcribe", str(FIXTURES / "dialogue.wav"), "--dialogue", "-f", "docx", "-o", str(out)
    )
    assert r.returncode == 0, r.stderr
    from docx import Document

    heads = [p.text.split("\n")[0] for p in Document(str(out)).paragraphs if p.text[:1] == "["]
    assert [h.split("] ")[1] for h in heads] == ["SPEAKER_1", "SPEAKER_2", "SPEAKER_1"]
