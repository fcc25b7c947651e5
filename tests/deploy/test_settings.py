"""Every VERBATIM_* variable the deployment files set is a `Settings` field, with a value
`Settings` accepts."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy import checks


def _names_in_dockerfile(text: str) -> set[str]:
    dockerfile = checks.parse_dockerfile(text)
    names: set[str] = set()
    for instruction in dockerfile.of("ENV"):
        names |= set(checks.env_assignments(instruction.value))
    return names


def _names_in_compose(text: str) -> set[str]:
    doc = checks.load_compose()
    names = checks.interpolated_names(text)
    for service in doc["services"]:
        names |= set(checks.compose_service_env(doc, service))
    return names


def _names_in_k8s() -> set[str]:
    names: set[str] = set()
    for path, doc in checks.k8s_documents():
        if doc.get("kind") == "ConfigMap":
            names |= set(doc.get("data", {}))
        names |= set(checks.VAR_NAME.findall(path.read_text()))
    for env_file in checks.K8S.rglob("secrets.env.example"):
        names |= set(checks.read_env_file(env_file))
    return names


def test_every_variable_set_is_a_setting():
    names = (
        _names_in_dockerfile(checks.DOCKERFILE.read_text())
        | _names_in_compose(checks.COMPOSE.read_text())
        | set(checks.read_env_file(checks.ENV_EXAMPLE))
        | _names_in_k8s()
    )
    verbatim = {n for n in names if n.startswith("VERBATIM_")}
    # The files do set the important ones (the collection works).
    assert {
        "VERBATIM_DATABASE_URL",
        "VERBATIM_SECRET_KEY",
        "VERBATIM_STORAGE",
        "VERBATIM_S3_BUCKET",
        "VERBATIM_RUN_WORKER_IN_API",
        "VERBATIM_AUTO_MIGRATE",
        "VERBATIM_DATA_DIR",
    } <= verbatim
    assert checks.unknown_settings(verbatim) == []


def test_a_misspelt_setting_is_caught():
    text = checks.DOCKERFILE.read_text().replace("VERBATIM_DATA_DIR=", "VERBATIM_DATADIR=")
    assert checks.unknown_settings(_names_in_dockerfile(text)) == ["VERBATIM_DATADIR"]
    assert checks.unknown_settings({"VERBATIM_S3_BUCKET", "VERBATIM_WORKERS"}) == [
        "VERBATIM_WORKERS"
    ]


def test_compose_settings_are_valid_values():
    """Each Verbatim service's environment, with deploy/.env.example filled in, is accepted by
    Settings in production (secrets long enough, enums spelt right, numbers numbers)."""
    doc = checks.load_compose()
    for service in ("migrate", "api", "worker"):
        env = checks.compose_service_env(doc, service)
        assert env["VERBATIM_ENV"] == "production"
        assert checks.validate_settings(env) == [], service


def test_k8s_settings_are_valid_values():
    for overlay in (checks.K8S / "base", checks.K8S / "overlays" / "yandex-cloud"):
        config: dict[str, str] = {}
        for _, doc in checks.k8s_documents([checks.K8S / "base" / "configmap.yaml"]):
            config.update(doc["data"])
        if overlay.name != "base":
            for _, doc in checks.k8s_documents([overlay / "configmap-patch.yaml"]):
                config.update(doc["data"])
        secrets = checks.read_env_file(overlay / "secrets.env.example")
        secrets = {k: v or "s" * 48 for k, v in secrets.items()}
        for path in ("api-deployment.yaml", "worker-deployment.yaml", "migrate-job.yaml"):
            for _, doc in checks.k8s_documents([checks.K8S / "base" / path]):
                container = checks.pod_spec(doc)["containers"][0]
                env = {
                    **config,
                    **secrets,
                    **{e["name"]: e["value"] for e in container.get("env", [])},
                }
                assert checks.validate_settings(env) == [], (overlay.name, path)


def test_a_bad_value_is_caught():
    doc = checks.load_compose()
    env = checks.compose_service_env(doc, "api")
    assert checks.validate_settings({**env, "VERBATIM_S3_ADDRESSING_STYLE": "virtul"})
    assert checks.validate_settings({**env, "VERBATIM_SECRET_KEY": "short"})
    assert checks.validate_settings({**env, "VERBATIM_DATABASE_POOL_SIZE": "ten"})
    unset_bucket = {k: v for k, v in env.items() if k != "VERBATIM_S3_BUCKET"}
    assert checks.validate_settings(unset_bucket)


def test_every_required_compose_variable_is_in_the_example_env():
    text = checks.COMPOSE.read_text()
    required = checks.required_names(text)
    assert {"POSTGRES_PASSWORD", "VERBATIM_SECRET_KEY", "MINIO_ROOT_PASSWORD"} <= required
    assert required <= set(checks.read_env_file(checks.ENV_EXAMPLE))
    # And the checker would notice one missing.
    assert "NEW_SECRET" not in checks.read_env_file(checks.ENV_EXAMPLE)
    assert "NEW_SECRET" in checks.required_names(text + "\nx: ${NEW_SECRET:?set it}\n")


def test_secrets_are_empty_in_the_examples():
    """The examples ship no usable secret: an operator must generate them."""
    for path in [checks.ENV_EXAMPLE, *checks.K8S.rglob("secrets.env.example")]:
        values = checks.read_env_file(path)
        for key, value in values.items():
            if re.search(r"SECRET|PASSWORD", key):
                assert value == "", f"{path}: {key} has a value"


def test_interpolation_follows_compose_rules():
    env = {"A": "1", "EMPTY": ""}
    assert checks.interpolate("${A}-${B:-x}-${EMPTY:-d}-${EMPTY-d}-$$A", env) == "1-x-d--$A"
    assert checks.interpolate("${B:-http://${A:-h}:${C:-80}}", env) == "http://1:80"
    try:
        checks.interpolate("${EMPTY:?must be set}", env)
    except checks.InterpolationError as exc:
        assert "must be set" in str(exc)
    else:
        raise AssertionError("an unset required variable was accepted")


def test_dockerfile_env_names_collector_sees_multiline_env(tmp_path: Path):
    text = "FROM x AS a\nFROM y AS b\nENV A=1 \\\n    VERBATIM_HOST=0.0.0.0\n"
    assert _names_in_dockerfile(text) == {"A", "VERBATIM_HOST"}
