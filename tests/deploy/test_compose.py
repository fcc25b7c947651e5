"""deploy/compose.yaml: valid against the compose-spec JSON schema (vendored in the
check-jsonschema wheel, read offline), and wired as the operations guide says."""

from __future__ import annotations

import copy
import re

import pytest

from tests.deploy import checks


@pytest.fixture(scope="module")
def compose() -> dict:
    return checks.load_compose()


def test_compose_is_valid_against_the_compose_spec(compose):
    assert checks.compose_schema_problems(compose) == []


@pytest.mark.parametrize(
    "breakage",
    ["bad_condition", "unknown_key", "deploy_typo", "healthcheck_typo"],
)
def test_schema_catches_broken_copies(compose, breakage):
    broken = copy.deepcopy(compose)
    api = broken["services"]["api"]
    if breakage == "bad_condition":
        api["depends_on"]["migrate"]["condition"] = "service_done"
    elif breakage == "unknown_key":
        api["enviroment"] = api.pop("environment")
    elif breakage == "deploy_typo":
        api["deploy"]["replica"] = api["deploy"].pop("replicas")
    else:
        broken["services"]["worker"]["healthcheck"] = {"disabled": True}
    assert checks.compose_schema_problems(broken)


def test_the_schema_is_read_from_the_wheel_not_the_network():
    from importlib import resources

    schema = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(
        "compose-spec.json"
    )
    assert schema.is_file()


def test_missing_secret_stops_compose():
    env = checks.example_env()
    del env["VERBATIM_SECRET_KEY"]
    with pytest.raises(checks.InterpolationError, match="VERBATIM_SECRET_KEY"):
        checks.load_compose(env=env)


def test_migrations_run_once_before_api_and_workers(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["minio-init"]["condition"] == "service_completed_successfully"
    for name in ("migrate", "api", "worker"):
        assert services[name]["environment"]["VERBATIM_AUTO_MIGRATE"] == "false"


def test_api_runs_two_replicas_without_the_in_process_worker(compose):
    api = compose["services"]["api"]
    assert api["deploy"]["replicas"] == 2
    assert api["command"] == ["serve", "--no-worker"]
    assert api["environment"]["VERBATIM_RUN_WORKER_IN_API"] == "false"
    assert "ports" not in api, "clients reach the API through the proxy only"
    assert "container_name" not in api


def test_workers_scale_with_scale_flag(compose):
    worker = compose["services"]["worker"]
    assert worker["command"] == ["worker"]
    # A fixed name or host port would make `--scale worker=N` fail on the second container.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["healthcheck"] == {"disable": True}


def test_storage_is_minio_with_the_bucket_created(compose):
    services = compose["services"]
    env = services["api"]["environment"]
    assert env["VERBATIM_STORAGE"] == "s3"
    assert env["VERBATIM_S3_ADDRESSING_STYLE"] == "path"
    init = services["minio-init"]
    script = init["command"][0]
    assert 'mc mb --ignore-existing "local/$BUCKET"' in script
    assert init["environment"]["BUCKET"] == env["VERBATIM_S3_BUCKET"]
    assert init["environment"]["ACCESS_KEY"] == env["VERBATIM_S3_ACCESS_KEY_ID"]
    # The S3 endpoint is the proxy's S3 host name, an alias on the compose network.
    proxy = services["proxy"]
    alias = proxy["networks"]["default"]["aliases"][0]
    assert env["VERBATIM_S3_ENDPOINT_URL"] == (
        f"http://{alias}:{proxy['environment']['HTTP_PORT']}"
    )
    assert proxy["ports"] == [
        f"{proxy['environment']['HTTP_PORT']}:{proxy['environment']['HTTP_PORT']}"
    ]


def test_postgres_has_pgvector_and_data_is_on_volumes(compose):
    services = compose["services"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "miniodata:/data" in services["minio"]["volumes"]
    assert set(compose["volumes"]) == {"pgdata", "miniodata"}
    url = services["api"]["environment"]["VERBATIM_DATABASE_URL"]
    assert re.fullmatch(r"postgresql://verbatim:[^@]+@postgres:5432/verbatim", url)


def test_proxy_forwards_to_the_api_port(compose):
    template = (checks.DEPLOY / "nginx" / "default.conf.template").read_text()
    port = checks.parse_dockerfile(checks.DOCKERFILE.read_text()).of("EXPOSE")[0].value
    assert f"server api:{port} resolve;" in template
    assert "server minio:9000 resolve;" in template
    # Bodies stream to the API, which enforces the real limit.
    assert "proxy_request_buffering off;" in template


def test_mounted_files_exist(compose):
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (checks.DEPLOY / source).is_file(), source


def test_minio_init_script_runs_and_runs_again(compose, tmp_path):
    """Run minio-init's script with `sh -ec`, as its entrypoint does, against a stub `mc` that
    records its calls and knows which policies exist: the first run creates the bucket, the
    bucket-scoped policy and the user; a second run (every `up`) succeeds without re-creating."""
    import json
    import os
    import subprocess

    init = compose["services"]["minio-init"]
    assert init["entrypoint"] == ["/bin/sh", "-ec"]
    mount = next(v for v in init["volumes"] if "bucket-policy" in v)
    source, target = mount.split(":")[:2]
    script = init["command"][0].replace(target, str(checks.DEPLOY / source))
    script = script.replace("/tmp/policy.json", str(tmp_path / "policy.json"))
    calls, state = tmp_path / "calls", tmp_path / "policies"
    stub = tmp_path / "bin" / "mc"
    stub.parent.mkdir()
    stub.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$*" in\n'
        f'  "admin policy info local verbatim") grep -qx verbatim {state} 2>/dev/null ;;\n'
        f'  "admin policy create local verbatim "*) echo verbatim >> {state} ;;\n'
        "esac\n"
    )
    stub.chmod(0o755)
    env = {**os.environ, **init["environment"], "PATH": f"{stub.parent}:{os.environ['PATH']}"}
    for _ in range(2):
        subprocess.run(["/bin/sh", "-ec", script], env=env, check=True, timeout=30)
    lines = calls.read_text().splitlines()
    bucket, key = init["environment"]["BUCKET"], init["environment"]["ACCESS_KEY"]
    assert lines.count(f"mb --ignore-existing local/{bucket}") == 2
    assert sum(line.startswith("admin policy create") for line in lines) == 1
    assert lines.count(f"admin policy attach local verbatim --user {key}") == 2
    policy = json.loads((tmp_path / "policy.json").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    # A failing step stops the script (sh -e), so api and worker would not start.
    stub.write_text('#!/bin/sh\ncase "$1" in mb) exit 1 ;; esac\n')
    failed = subprocess.run(["/bin/sh", "-ec", script], env=env, timeout=30)
    assert failed.returncode != 0
