"""Checkers for the deployment files (Dockerfile, deploy/compose.yaml, deploy/k8s).

Docker and Kubernetes cannot run on the machines the tests run on, so these functions read the
files and compare them with the code: settings names and values against `Settings`, commands
against the Typer app, the image's install steps against the README, manifests against the
Kubernetes and compose-spec JSON schemas shipped inside PyPI wheels (kubernetes-validate,
check-jsonschema). Each returns a list of problems (empty: fine), so that tests can also run
them on deliberately broken copies and see them fail.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"

VAR_NAME = re.compile(r"\bVERBATIM_[A-Z0-9_]+\b")


# --- settings ------------------------------------------------------------------------------


def settings_env_names() -> set[str]:
    """Every environment variable `Settings` reads: VERBATIM_ + the field name, upper case."""
    from verbatim.config import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def unknown_settings(names: Iterable[str]) -> list[str]:
    known = settings_env_names()
    return sorted({n for n in names if n.startswith("VERBATIM_") and n not in known})


def validate_settings(env: Mapping[str, str]) -> list[str]:
    """Build `Settings` from exactly these variables (no .env file, no process environment) and
    report what pydantic refuses."""
    from pydantic import ValidationError

    from verbatim.config import Settings

    saved = {k: v for k, v in os.environ.items() if k.startswith("VERBATIM_")}
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith("VERBATIM_")})
        Settings(_env_file=None)  # type: ignore[call-arg]
    except ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()]
    finally:
        for key in [k for k in os.environ if k.startswith("VERBATIM_")]:
            del os.environ[key]
        os.environ.update(saved)
    return []


# --- env files and compose interpolation ---------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments and blank lines ignored), as docker compose and kustomize read."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f"{path.name}:{number}: not KEY=VALUE: {raw!r}")
        key, value = line.split("=", 1)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path.name}:{number}: bad variable name {key!r}")
        values[key] = value
    return values


class InterpolationError(ValueError):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose-spec interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, ${VAR:+alt}; defaults may nest."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text.startswith("${", j):
                    depth += 1
                    j += 2
                    continue
                if text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise InterpolationError(f"unclosed ${{ in {text!r}")
            out.append(_expand(text[i + 2 : j - 1], env))
            i = j
        else:
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i + 1 :])
            if not m:
                raise InterpolationError(f"bad $ in {text!r}")
            out.append(env.get(m.group(0), ""))
            i += 1 + m.end()
    return "".join(out)


def _expand(body: str, env: Mapping[str, str]) -> str:
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?\Z", body, re.S)
    if not m:
        raise InterpolationError(f"bad ${{{body}}}")
    name, op, arg = m.group(1), m.group(2), m.group(3) or ""
    value = env.get(name)
    empty = value is None or (op is not None and op.startswith(":") and value == "")
    if op in (":-", "-"):
        return interpolate(arg, env) if empty else str(value)
    if op in (":?", "?"):
        if empty:
            raise InterpolationError(f"{name}: {arg}")
        return str(value)
    if op in (":+", "+"):
        return "" if empty else interpolate(arg, env)
    return "" if value is None else value


def interpolated_names(text: str) -> set[str]:
    """Variables a compose file reads from its environment (.env)."""
    unescaped = text.replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", unescaped)) | set(
        re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", unescaped)
    )


def required_names(text: str) -> set[str]:
    """Variables the file refuses to start without (${VAR:?...})."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", text.replace("$$", "")))


def example_env(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """The example .env with every empty secret filled, as an operator would fill it."""
    values = read_env_file(path)
    return {k: (v or f"{k.lower()}-" + "x" * 40) for k, v in values.items()}


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    return node


def load_compose(path: Path = COMPOSE, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as docker compose sees it: YAML anchors merged, then interpolated."""
    raw = yaml.safe_load(path.read_text())
    return _interpolate_tree(raw, example_env() if env is None else env)  # type: ignore[no-any-return]


def compose_schema_problems(doc: Mapping[str, Any]) -> list[str]:
    """Validate against the compose-spec JSON schema vendored in check-jsonschema's wheel."""
    import jsonschema

    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text()
    )
    schema = json.loads(text)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(dict(doc))
    ]


def compose_service_env(doc: Mapping[str, Any], service: str) -> dict[str, str]:
    env = doc["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# --- the CLI ---------------------------------------------------------------------------------


def cli_problems(argv: list[str]) -> list[str]:
    """Check `verbatim ARGV...` against the Typer app without running it: every subcommand
    exists, every option is one the command takes (with its value), positionals fit."""
    import typer

    from verbatim.cli import app

    # Typer vendors its own click: recognise groups and parameters by what they have.
    command: Any = typer.main.get_command(app)
    path = ["verbatim"]
    args = list(argv)
    while hasattr(command, "commands"):
        if not args:
            return [f"{' '.join(path)}: no subcommand"]
        name = args.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            return [f"{' '.join(path)}: no command {name!r} (has {sorted(command.commands)})"]
        command, path = sub, [*path, name]
    options: dict[str, Any] = {}
    for param in command.params:
        if param.param_type_name == "option":
            for opt in (*param.opts, *param.secondary_opts):
                options[opt] = param
    positionals = [p for p in command.params if p.param_type_name == "argument"]
    seen_positionals = 0
    problems: list[str] = []
    while args:
        token = args.pop(0)
        if token == "--help":
            continue
        if token.startswith("-"):
            name, _, inline = token.partition("=")
            option = options.get(name)
            if option is None:
                problems.append(f"{' '.join(path)}: no option {name}")
                continue
            if not (option.is_flag or option.count) and not inline:
                if not args:
                    problems.append(f"{' '.join(path)}: {name} needs a value")
                else:
                    args.pop(0)
        else:
            seen_positionals += 1
    if seen_positionals > len(positionals):
        problems.append(f"{' '.join(path)}: {seen_positionals} arguments, takes {len(positionals)}")
    return problems


def commands_in_text(text: str) -> list[list[str]]:
    """`verbatim ...` commands written in docs: inside code spans and fenced blocks, up to a
    shell separator or comment."""
    found: list[list[str]] = []
    code = re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text)
    # `verbatim ARGS`, or ARGS given to a Verbatim service: `compose run --rm migrate ARGS`.
    pattern = re.compile(
        r"(?:(?:^|[\s(])verbatim|\brun --rm (?:migrate|api|worker))((?: [^\s;&|#`)]+)+)"
    )
    for chunk in code:
        for line in chunk.splitlines():
            for m in pattern.finditer(line):
                words = shlex.split(m.group(1))
                if words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
                    found.append(words)
    return found


def command_path(argv: list[str]) -> list[str]:
    """The subcommand words of `verbatim ARGV` (`["user", "create"]`)."""
    import typer

    from verbatim.cli import app

    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in argv:
        if not hasattr(command, "commands") or word not in command.commands:
            break
        command = command.commands[word]
        path.append(word)
    return path


# --- Dockerfile ----------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    value: str
    stage: str
    line: int


@dataclass
class Dockerfile:
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str, stage: str | None = None) -> list[Instruction]:
        return [
            i
            for i in self.instructions
            if i.keyword == keyword and (stage is None or i.stage == stage)
        ]

    @property
    def stages(self) -> list[str]:
        return [i.stage for i in self.of("FROM")]


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions with their stage name; continuation lines joined, comments dropped."""
    result = Dockerfile()
    stage = ""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending)
        pending = []
        keyword, _, value = joined.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = value.split()
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(start)
        result.instructions.append(Instruction(keyword, value.strip(), stage, start))
    return result


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list)
    return [str(v) for v in parsed]


def env_assignments(value: str) -> dict[str, str]:
    """`ENV A=1 B=2` (the key=value form)."""
    return dict(part.split("=", 1) for part in shlex.split(value))


@dataclass
class PipStep:
    verb: str  # install or wheel
    targets: list[str]
    options: list[str]
    stage: str


def pip_steps(commands: Iterable[tuple[str, str]]) -> list[PipStep]:
    """`pip install|wheel` calls in shell commands (stage, command), with their targets."""
    steps: list[PipStep] = []
    takes_value = {"--find-links", "-f", "--wheel-dir", "-w", "-r", "--requirement", "-c"}
    for stage, command in commands:
        tokens = shlex.split(command, comments=True)
        parts: list[list[str]] = [[]]
        for token in tokens:
            if token in ("&&", "||", ";"):
                parts.append([])
            else:
                parts[-1].append(token)
        for words in parts:
            for index, word in enumerate(words):
                if word.endswith("pip") and index + 1 < len(words):
                    verb = words[index + 1]
                    if verb not in ("install", "wheel"):
                        continue
                    rest = words[index + 2 :]
                    targets, options = [], []
                    skip = False
                    for w in rest:
                        if skip:
                            options.append(w)
                            skip = False
                        elif w.startswith("-"):
                            options.append(w)
                            skip = w in takes_value
                        else:
                            targets.append(w)
                    steps.append(PipStep(verb, targets, options, stage))
                    break
    return steps


def split_extras(target: str) -> tuple[str, frozenset[str]]:
    m = re.fullmatch(r"([^\[\]]+)(?:\[([^\]]*)\])?", target.strip("\"'"))
    if not m:
        raise ValueError(f"bad pip target {target!r}")
    extras = frozenset(e.strip() for e in (m.group(2) or "").split(",") if e.strip())
    return m.group(1), extras


def readme_install() -> tuple[str, frozenset[str]]:
    """What the README's quick start installs to run the service: `pip install -e .`."""
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    steps = pip_steps([("readme", quick)])
    assert len(steps) == 1, steps
    (target,) = steps[0].targets
    return split_extras(target)


def image_install_problems(dockerfile: Dockerfile, project_name: str) -> list[str]:
    """The image installs what the README installs: the builder makes wheels of the README's
    target with the same extras, and the runtime stage installs only those wheels (--no-index)
    of the project by name, with the same extras."""
    problems: list[str] = []
    readme_target, readme_extras = readme_install()
    runs = [(i.stage, i.value) for i in dockerfile.of("RUN")]
    steps = pip_steps(runs)
    stages = dockerfile.stages
    if len(stages) < 2:
        return ["not a multi-stage build"]
    final = stages[-1]
    builds = [s for s in steps if s.verb == "wheel" and s.stage != final]
    installs = [s for s in steps if s.verb == "install" and s.stage == final]
    if not builds:
        problems.append("no `pip wheel` in a build stage")
    for step in builds:
        parsed = [split_extras(t) for t in step.targets]
        if parsed != [(readme_target, readme_extras)]:
            problems.append(f"build stage wheels {step.targets}, README installs {readme_target}")
    if len(installs) != 1:
        problems.append(f"{len(installs)} `pip install` steps in the final stage, expected 1")
    for step in installs:
        parsed = [split_extras(t) for t in step.targets]
        if parsed != [(project_name, readme_extras)]:
            problems.append(
                f"final stage installs {step.targets}, expected {project_name!r} "
                f"with extras {sorted(readme_extras)}"
            )
        if "--no-index" not in step.options:
            problems.append("final stage install may fetch from an index (no --no-index)")
    return problems


def dockerignore_patterns(text: str) -> list[tuple[bool, str]]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        patterns.append((negate, line.lstrip("!").strip("/")))
    return patterns


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"(?:/.*)?\Z")


def dockerignored(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent folder) decides."""
    ignored = False
    for negate, pattern in patterns:
        if _glob_regex(pattern).match(path):
            ignored = not negate
    return ignored


def build_context(root: Path, patterns: list[tuple[bool, str]]) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv")]
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not dockerignored(rel, patterns):
                yield rel


def match_any(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


# --- Kubernetes --------------------------------------------------------------------------------


KUSTOMIZE_KINDS = {"Kustomization", "Component"}
K8S_VERSIONS = ("1.29.0", "1.37.0")  # the oldest supported release we target, and the newest


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml"))


def k8s_documents(paths: Iterable[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in k8s_files() if paths is None else paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):  # JSON patches (lists) are read where they are applied
                docs.append((path, doc))
    return docs


def is_resource(doc: Any) -> bool:
    return isinstance(doc, dict) and "kind" in doc and doc["kind"] not in KUSTOMIZE_KINDS


def k8s_schema_problems(doc: dict[str, Any], version: str) -> list[str]:
    """Strict validation (unknown fields are errors) against kubernetes-validate's schemas."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(map(str, exc.path))
        return [f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {where}: {exc.message}"]
    return []


def generated_secret(name: str, env_file: Path) -> dict[str, Any]:
    """The Secret kustomize's secretGenerator makes from an env file (values base64)."""
    import base64

    values = read_env_file(env_file)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }


def apply_json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The `add` operation of RFC 6902 (all the overlays use), on a copy."""
    import copy

    result = copy.deepcopy(doc)
    for op in ops:
        if op["op"] != "add":
            raise ValueError(f"unsupported op {op['op']}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        node: Any = result
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        if isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), op["value"])
        else:
            node[last] = op["value"]
    return result


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
