"""deploy/k8s: every manifest validates (strictly: unknown fields fail) against the Kubernetes
JSON schemas that ship inside the kubernetes-validate wheel, and the pieces fit together."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.deploy import checks

BASE = checks.K8S / "base"
YANDEX = checks.K8S / "overlays" / "yandex-cloud"


def _resources() -> list[tuple[str, dict]]:
    found = [
        (path.relative_to(checks.K8S).as_posix(), doc)
        for path, doc in checks.k8s_documents()
        if checks.is_resource(doc)
    ]
    # The Secrets kustomize generates from the env file templates.
    for env_file in checks.K8S.rglob("secrets.env.example"):
        found.append(
            (
                env_file.relative_to(checks.K8S).as_posix(),
                checks.generated_secret("verbatim-secrets", env_file),
            )
        )
    # The overlay's JSON patch applied to what it targets.
    ops = yaml.safe_load((YANDEX / "ca-volume-patch.yaml").read_text())
    for path, doc in checks.k8s_documents(BASE.glob("*.yaml")):
        if doc.get("kind") in ("Deployment", "Job"):
            found.append((f"{path.name}+ca-volume-patch", checks.apply_json_patch(doc, ops)))
    return found


RESOURCES = _resources()


def _base(kind: str, name: str) -> dict:
    for _, doc in checks.k8s_documents(BASE.glob("*.yaml")):
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise LookupError(f"{kind}/{name}")


def test_every_required_kind_is_there():
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in RESOURCES}
    assert {
        ("Deployment", "verbatim-api"),
        ("Service", "verbatim-api"),
        ("HorizontalPodAutoscaler", "verbatim-api"),
        ("PodDisruptionBudget", "verbatim-api"),
        ("Deployment", "verbatim-worker"),
        ("PodDisruptionBudget", "verbatim-worker"),
        ("Job", "verbatim-migrate"),
        ("ConfigMap", "verbatim-config"),
        ("Secret", "verbatim-secrets"),
        ("Ingress", "verbatim-api"),
    } <= kinds


@pytest.mark.parametrize("version", checks.K8S_VERSIONS)
@pytest.mark.parametrize(("where", "doc"), RESOURCES, ids=[w for w, _ in RESOURCES])
def test_manifest_validates_against_kubernetes_schema(where, doc, version):
    assert checks.k8s_schema_problems(doc, version) == []


@pytest.mark.parametrize(
    "breakage", ["typo_field", "port_text", "missing_selector", "probe_without_handler"]
)
def test_validator_catches_broken_copies(breakage):
    doc = copy.deepcopy(_base("Deployment", "verbatim-api"))
    container = checks.pod_spec(doc)["containers"][0]
    if breakage == "typo_field":
        container["livenesProbe"] = container.pop("livenessProbe")
    elif breakage == "port_text":
        container["ports"][0]["containerPort"] = "eight thousand"
    elif breakage == "missing_selector":
        del doc["spec"]["selector"]
    else:
        container["readinessProbe"] = {"periodSeconds": "10"}
    assert checks.k8s_schema_problems(doc, checks.K8S_VERSIONS[-1])


def test_probes_use_the_health_routes():
    api = checks.pod_spec(_base("Deployment", "verbatim-api"))["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    port_names = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert api["readinessProbe"]["httpGet"]["port"] in port_names
    config = _base("ConfigMap", "verbatim-config")["data"]
    assert port_names["http"] == int(config["VERBATIM_PORT"])
    # The readiness timeout outlasts the checks' own 5 s timeout.
    from verbatim.health.checks import CHECK_TIMEOUT_S

    assert api["readinessProbe"]["timeoutSeconds"] > CHECK_TIMEOUT_S


def test_selectors_services_and_targets_fit():
    api = _base("Deployment", "verbatim-api")
    worker = _base("Deployment", "verbatim-worker")
    for deployment in (api, worker):
        assert checks.labels_match(
            deployment["spec"]["selector"]["matchLabels"],
            deployment["spec"]["template"]["metadata"]["labels"],
        )
    service = _base("Service", "verbatim-api")
    assert checks.labels_match(
        service["spec"]["selector"], api["spec"]["template"]["metadata"]["labels"]
    )
    assert not checks.labels_match(
        service["spec"]["selector"], worker["spec"]["template"]["metadata"]["labels"]
    ), "the Service must not send requests to workers"
    hpa = _base("HorizontalPodAutoscaler", "verbatim-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == api["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    for name, deployment in (("verbatim-api", api), ("verbatim-worker", worker)):
        pdb = _base("PodDisruptionBudget", name)
        assert (
            pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        )
    ingress = yaml.safe_load((checks.K8S / "components" / "ingress" / "ingress.yaml").read_text())
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_pods_share_config_and_secret_and_run_hardened():
    for kind, name in (
        ("Deployment", "verbatim-api"),
        ("Deployment", "verbatim-worker"),
        ("Job", "verbatim-migrate"),
    ):
        spec = checks.pod_spec(_base(kind, name))
        container = spec["containers"][0]
        refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
        assert refs == {"configMapRef": "verbatim-config", "secretRef": "verbatim-secrets"}
        assert container["image"] == "verbatim"  # set by kustomize `images`
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        config = _base("ConfigMap", "verbatim-config")["data"]
        assert config["VERBATIM_DATA_DIR"] in mounts, "data dir is writable (emptyDir)"
        assert "memory" in container["resources"]["requests"]
        assert "memory" in container["resources"]["limits"]
    api = checks.pod_spec(_base("Deployment", "verbatim-api"))["containers"][0]
    assert api["args"] == ["serve", "--no-worker"]
    assert {"name": "VERBATIM_RUN_WORKER_IN_API", "value": "false"} in api["env"]
    assert _base("ConfigMap", "verbatim-config")["data"]["VERBATIM_AUTO_MIGRATE"] == "false"


def test_memory_requests_cover_the_measured_rss():
    """Figures measured here (docs/operations.md, "Sizing"): API 569 MB peak RSS with the search
    model loaded; worker 824 MB after a dialogue transcription with tiny.en."""

    def mib(quantity: str) -> float:
        units = {"Mi": 1, "Gi": 1024}
        return float(quantity[:-2]) * units[quantity[-2:]]

    api = checks.pod_spec(_base("Deployment", "verbatim-api"))["containers"][0]["resources"]
    worker = checks.pod_spec(_base("Deployment", "verbatim-worker"))["containers"][0]["resources"]
    assert mib(api["requests"]["memory"]) * 1.048576 >= 569
    assert mib(worker["requests"]["memory"]) * 1.048576 >= 824
    assert mib(worker["limits"]["memory"]) >= 1.5 * 824


def test_kustomizations_reference_files_that_exist():
    for path in checks.K8S.rglob("kustomization.yaml"):
        doc = yaml.safe_load(path.read_text())
        listed = [*doc.get("resources", []), *doc.get("components", [])]
        listed += [p["path"] for p in doc.get("patches", [])]
        for entry in listed:
            assert (path.parent / entry).exists(), f"{path}: {entry}"
        for generator in [*doc.get("secretGenerator", []), *doc.get("configMapGenerator", [])]:
            for env_file in generator.get("envs", []):
                # Operators create it from the committed .example next to it.
                assert (path.parent / f"{env_file}.example").is_file(), f"{path}: {env_file}"
    base = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    in_dir = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(base["resources"]) == in_dir, "every manifest in base/ is listed"


def test_yandex_overlay_points_at_yandex_services():
    patch = yaml.safe_load((YANDEX / "configmap-patch.yaml").read_text())
    assert patch["data"]["VERBATIM_S3_ENDPOINT_URL"] == "https://storage.yandexcloud.net"
    assert patch["data"]["VERBATIM_S3_REGION"] == "ru-central1"
    secrets = checks.read_env_file(YANDEX / "secrets.env.example")
    url = secrets["VERBATIM_DATABASE_URL"]
    assert ".rw.mdb.yandexcloud.net:6432/" in url and "sslmode=verify-full" in url
    ops = yaml.safe_load((YANDEX / "ca-volume-patch.yaml").read_text())
    mount = ops[1]["value"]["mountPath"]
    assert f"sslrootcert={mount}/root.crt" in url
    kustomization = yaml.safe_load((YANDEX / "kustomization.yaml").read_text())
    (ca,) = kustomization["configMapGenerator"]
    assert ops[0]["value"]["configMap"]["name"] == ca["name"] and ca["files"] == ["root.crt"]


def test_the_migration_step_can_be_applied_alone():
    """docs/operations.md applies `-l app.kubernetes.io/component in (config,migrate)` first and
    waits for the Job: everything the Job needs must carry one of those labels."""
    first = {"config", "migrate"}
    job = _base("Job", "verbatim-migrate")
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrate"
    config = _base("ConfigMap", "verbatim-config")
    assert config["metadata"]["labels"]["app.kubernetes.io/component"] in first
    for path in (BASE / "kustomization.yaml", YANDEX / "kustomization.yaml"):
        doc = yaml.safe_load(path.read_text())
        generators = [*doc.get("secretGenerator", []), *doc.get("configMapGenerator", [])]
        assert generators
        for generator in generators:
            labels = generator.get("options", {}).get("labels", {})
            assert labels.get("app.kubernetes.io/component") in first, (path, generator["name"])
    namespace = yaml.safe_load((YANDEX / "namespace.yaml").read_text())
    assert namespace["metadata"]["labels"]["app.kubernetes.io/component"] in first
    for name in ("verbatim-api", "verbatim-worker"):
        labels = _base("Deployment", name)["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] not in first, "those roll out after the Job"
