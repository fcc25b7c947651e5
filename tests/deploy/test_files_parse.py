"""Every deployment file parses: YAML documents, env files, the nginx template's variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy import checks

YAML_FILES = sorted(checks.DEPLOY.rglob("*.yaml"))
ENV_FILES = [*sorted(checks.DEPLOY.rglob("*.env.example")), checks.ENV_EXAMPLE]


def test_the_files_exist():
    names = {p.relative_to(checks.ROOT).as_posix() for p in YAML_FILES}
    assert "deploy/compose.yaml" in names
    assert {
        "deploy/k8s/base/kustomization.yaml",
        "deploy/k8s/base/api-deployment.yaml",
        "deploy/k8s/base/worker-deployment.yaml",
        "deploy/k8s/base/migrate-job.yaml",
        "deploy/k8s/overlays/yandex-cloud/kustomization.yaml",
    } <= names
    assert checks.DOCKERFILE.is_file() and checks.DOCKERIGNORE.is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(checks.DEPLOY).as_posix())
def test_yaml_parses(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} holds no document"


def test_broken_yaml_is_caught(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(checks.COMPOSE.read_text().replace("services:\n", "services:\n\t", 1))
    with pytest.raises(yaml.YAMLError):
        list(yaml.safe_load_all(broken.read_text()))


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.relative_to(checks.DEPLOY).as_posix())
def test_env_files_parse(path: Path):
    assert checks.read_env_file(path)


def test_a_broken_env_file_is_caught(tmp_path: Path):
    broken = tmp_path / "x.env"
    broken.write_text("GOOD=1\nVERBATIM SECRET KEY\n")
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        checks.read_env_file(broken)


def test_nginx_template_variables_are_given_to_the_proxy():
    """The nginx image substitutes only variables set in the container: every ${NAME} in the
    template must be in the proxy service's environment, or nginx gets a literal ${NAME}."""
    template = (checks.DEPLOY / "nginx" / "default.conf.template").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", template))
    assert used == {"HTTP_PORT", "S3_PUBLIC_HOST", "MAX_BODY"}
    proxy_env = checks.compose_service_env(checks.load_compose(), "proxy")
    assert used <= set(proxy_env)
    # nginx's own variables stay lower case, so envsubst never touches them.
    assert "$http_host" in template and "$remote_addr" in template
