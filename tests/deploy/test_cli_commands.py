"""Every `verbatim ...` command the image, compose, Kubernetes and the operations guide run
exists in the CLI with the options given."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from tests.deploy import checks
from verbatim.cli import app


def _image_commands() -> list[list[str]]:
    dockerfile = checks.parse_dockerfile(checks.DOCKERFILE.read_text())
    (entrypoint,) = dockerfile.of("ENTRYPOINT")
    (cmd,) = dockerfile.of("CMD")
    entry = checks.exec_form(entrypoint.value)
    assert entry[-1] == "verbatim", entry  # tini -- verbatim
    return [checks.exec_form(cmd.value)]


def _compose_commands() -> list[list[str]]:
    doc = checks.load_compose()
    found = []
    for service in doc["services"].values():
        if str(service.get("image", "")).startswith("verbatim"):
            found.append(list(service["command"]))
    return found


def _k8s_commands() -> list[list[str]]:
    found = []
    for _, doc in checks.k8s_documents():
        if doc.get("kind") in ("Deployment", "Job"):
            for container in checks.pod_spec(doc)["containers"]:
                assert "command" not in container, "keep the image's entrypoint (tini)"
                found.append(list(container["args"]))
    return found


def _doc_commands() -> list[list[str]]:
    text = (checks.ROOT / "docs" / "operations.md").read_text()
    return checks.commands_in_text(text)


def test_commands_are_collected():
    assert _image_commands() == [["serve"]]
    compose = _compose_commands()
    assert ["migrate"] in compose and ["worker"] in compose and ["serve", "--no-worker"] in compose
    k8s = _k8s_commands()
    assert sorted(map(tuple, k8s)) == [("migrate",), ("serve", "--no-worker"), ("worker",)]
    docs = _doc_commands()
    assert ["user", "create", "--email", "admin@example.com", "--admin"] in docs
    assert len(docs) >= 10


@pytest.mark.parametrize("source", ["image", "compose", "k8s", "docs"])
def test_commands_exist_in_the_cli(source: str):
    commands = {
        "image": _image_commands,
        "compose": _compose_commands,
        "k8s": _k8s_commands,
        "docs": _doc_commands,
    }[source]()
    problems = [p for argv in commands for p in checks.cli_problems(argv)]
    assert problems == []


def test_each_command_answers_help():
    """Run the real Typer app: `verbatim <command> --help` exits 0 for every command used."""
    used = _image_commands() + _compose_commands() + _k8s_commands() + _doc_commands()
    paths = {tuple(checks.command_path(argv)) for argv in used}
    assert {("serve",), ("worker",), ("migrate",), ("user", "create")} <= paths
    runner = CliRunner()
    for path in sorted(paths):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
    assert runner.invoke(app, ["serv", "--help"]).exit_code != 0


def test_the_checker_catches_wrong_commands():
    assert checks.cli_problems(["serve", "--no-worker"]) == []
    assert checks.cli_problems(["user", "create", "--email", "a@example.com", "--admin"]) == []
    assert checks.cli_problems(["storage", "check", "--grace-minutes", "5", "--json"]) == []
    assert checks.cli_problems(["serve", "--no-wrker"])
    assert checks.cli_problems(["wroker"])
    assert checks.cli_problems(["user", "delete", "--email", "a@example.com"])
    assert checks.cli_problems(["user", "create", "--email"])  # a value is missing
    assert checks.cli_problems(["migrate", "extra"])  # takes no argument
    assert checks.cli_problems(["search"])  # a group needs a subcommand


def test_commands_are_found_in_docs_text():
    text = (
        "Run `verbatim migrate` then:\n```sh\nverbatim storage check --fix   # repair\n"
        "docker compose run --rm migrate user create --email a@b.c\n"
        "kubectl exec deploy/verbatim-api -- verbatim search reindex --all\n```\n"
    )
    assert checks.commands_in_text(text) == [
        ["storage", "check", "--fix"],
        ["user", "create", "--email", "a@b.c"],
        ["search", "reindex", "--all"],
        ["migrate"],
    ]


def test_files_named_in_the_operations_guide_exist():
    """Paths under deploy/ that docs/operations.md names exist, except the files an operator
    creates from a committed template (.env, secrets.env, root.crt)."""
    text = (checks.ROOT / "docs" / "operations.md").read_text()
    # (`kubectl exec deploy/NAME` names a Deployment, not a file.)
    paths = set(re.findall(r"(?<!exec )(?<!-it )\bdeploy/[A-Za-z0-9_./-]*[A-Za-z0-9_]", text))
    assert {"deploy/compose.yaml", "deploy/k8s/base", "deploy/k8s/overlays/yandex-cloud"} <= paths
    created = {"deploy/.env", "deploy/k8s/base/secrets.env"}
    missing = [
        p
        for p in sorted(paths)
        if not (checks.ROOT / p).exists() and p not in created and not p.endswith("root.crt")
    ]
    assert missing == []
    for path in created:
        assert (checks.ROOT / f"{path}.example").is_file() or path == "deploy/.env"
    assert (checks.ROOT / "deploy/.env.example").is_file()
