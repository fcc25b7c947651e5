"""Imports run one way: plumbing (kit/, storage/, media/) never imports a domain, and no endpoint
module imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import verbatim

SRC = Path(verbatim.__file__).parent
PLUMBING = ("kit", "storage", "media")
DOMAINS = ("audio", "auth", "downloads", "jobs", "transcriptions", "uploads", "health")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_plumbing_does_not_import_domains() -> None:
    offenders = []
    for package in PLUMBING:
        for path in (SRC / package).rglob("*.py"):
            for module in imported_modules(path):
                if any(module.startswith(f"verbatim.{domain}") for domain in DOMAINS):
                    offenders.append(f"{path.relative_to(SRC)} imports {module}")
    assert offenders == []


def test_endpoint_modules_do_not_import_each_other() -> None:
    offenders = []
    for path in SRC.rglob("endpoints.py"):
        for module in imported_modules(path):
            if module.endswith(".endpoints") and module.startswith("verbatim."):
                offenders.append(f"{path.relative_to(SRC)} imports {module}")
    assert offenders == []
