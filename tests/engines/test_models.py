"""Larger local models from PyPI parts: `verbatim models install|list`, then a transcription
with one through the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, make_settings, wait_for_job
from tests.engines.helpers import service, start, usage_rows
from verbatim.engines.models import clear_resolve_cache
from verbatim.engines.packaged import packaged_models

pytestmark = pytest.mark.slow


def cli(*args: str, models_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(VERBATIM_ENV="test", VERBATIM_MODELS_DIR=str(models_dir))
    return subprocess.run(
        [sys.executable, "-m", "verbatim.cli", "models", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_install_list_and_transcribe_with_the_packaged_base_model(
    tmp_path: Path, database_url: str
) -> None:
    models_dir = tmp_path / "models"
    assert "base" in [m.name for m in packaged_models()]
    listed = cli("list", models_dir=models_dir)
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert lines[0][:2] == ["tiny.en", "installed"] and "(default)" in lines[0][2]
    assert [lines[1][0], lines[1][1]] == ["base", "packaged"]

    unknown = cli("install", "huge", models_dir=models_dir)
    assert unknown.returncode == 1 and "not packaged" in unknown.stderr

    installed = cli("install", "base", models_dir=models_dir)
    assert installed.returncode == 0, installed.stderr
    model_bin = models_dir / "base" / "model.bin"
    parts = packaged_models()[0].parts
    assert model_bin.stat().st_size == sum(p.stat().st_size for p in parts)
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]  # no staging left
    listed = cli("list", models_dir=models_dir)
    assert "base\tinstalled\t" in listed.stdout and "packaged" not in listed.stdout

    clear_resolve_cache()
    settings = make_settings(tmp_path, database_url, models_dir=models_dir)
    async with service(settings) as alice:
        engines = {e["name"]: e for e in (await alice.get("/api/v1/engines")).json()["items"]}
        assert [m["name"] for m in engines["faster-whisper"]["models"]] == ["tiny.en", "base"]
        audio = (await alice.upload(FIXTURES / "speech.wav")).json()
        started = await start(alice, audio["id"], model="base")
        job = await wait_for_job(alice, started["job_id"], timeout=180)
        assert job["status"] == "completed", job
        t = (await alice.get(f"/api/v1/transcriptions/{started['transcription_id']}")).json()
        assert t["model_name"] == "base" and "brown fox" in t["text"].lower()
        assert t["language"] == "en"  # a multilingual model, detecting the language
        [event] = await usage_rows()
        assert event.model == "base" and event.engine == "faster-whisper"


def test_install_with_no_models_dir_set_uses_the_data_directory(tmp_path: Path) -> None:
    """Zero configuration: `verbatim models install base` on a laptop puts the model in
    <data_dir>/models/whisper, where the service then finds it by name."""
    from verbatim.config import Settings
    from verbatim.engines.models import resolve_model

    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    env.update(VERBATIM_ENV="test", VERBATIM_DATA_DIR=str(data_dir))
    installed = subprocess.run(
        [sys.executable, "-m", "verbatim.cli", "models", "install", "base"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    assert (data_dir / "models" / "whisper" / "base" / "model.bin").is_file()
    settings = Settings(env="test", data_dir=data_dir)
    assert settings.models_dir == data_dir / "models" / "whisper"
    assert resolve_model("base", settings.models_dir).name == "base"
