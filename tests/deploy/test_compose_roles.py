"""The compose topology without Docker: the settings and commands deploy/compose.yaml gives its
Verbatim services, run as local processes against real PostgreSQL (the embedded server standing
in for the `postgres` service) and a real S3 protocol server (moto standing in for MinIO).

`migrate` first, then two `serve --no-worker` replicas and one `worker`, each with exactly the
environment compose renders from deploy/.env.example, except the addresses of the database, the
S3 endpoint, the data directory and the port, which only exist inside compose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import FIXTURES, db_uri
from tests.deploy import checks
from tests.s3 import MotoS3

VERBATIM = str(Path(sys.executable).with_name("verbatim"))
LOCAL_ONLY = {"VERBATIM_DATABASE_URL", "VERBATIM_S3_ENDPOINT_URL", "VERBATIM_DATA_DIR"}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def empty_database(pg_server) -> Iterator[str]:
    """An empty database (not the migrated template): `migrate` must build the schema."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield db_uri(pg_server, name)
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _env(service: str, overrides: dict[str, str]) -> dict[str, str]:
    compose_env = checks.compose_service_env(checks.load_compose(), service)
    base = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    return {**base, **compose_env, **overrides}


def _command(service: str) -> list[str]:
    return [VERBATIM, *checks.load_compose()["services"][service]["command"]]


@pytest.mark.slow
def test_compose_services_run_as_configured(
    empty_database: str, moto_s3: MotoS3, tmp_path: Path
) -> None:
    compose_env = checks.compose_service_env(checks.load_compose(), "api")
    bucket = compose_env["VERBATIM_S3_BUCKET"] + "-" + uuid.uuid4().hex[:8]
    moto_s3.client.create_bucket(Bucket=bucket)
    local = {
        "VERBATIM_DATABASE_URL": empty_database,
        "VERBATIM_S3_ENDPOINT_URL": moto_s3.endpoint_url,
        "VERBATIM_S3_BUCKET": bucket,
    }
    assert set(local) - {"VERBATIM_S3_BUCKET"} == LOCAL_ONLY - {"VERBATIM_DATA_DIR"}

    migrate = subprocess.run(
        _command("migrate"),
        env=_env("migrate", {**local, "VERBATIM_DATA_DIR": str(tmp_path / "migrate")}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    assert "database is up to date" in migrate.stdout

    # The first administrator, as the guide says: `run --rm migrate user create ...`.
    create = subprocess.run(
        [VERBATIM, "user", "create", "--email", "ops@example.com", "--password", "a long password"],
        env=_env("migrate", {**local, "VERBATIM_DATA_DIR": str(tmp_path / "migrate")}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert create.returncode == 0, create.stderr[-2000:]

    procs: list[subprocess.Popen[bytes]] = []
    ports = [_free_port(), _free_port()]
    logs = []
    try:
        for index, port in enumerate(ports):
            log = open(tmp_path / f"api{index}.log", "wb")  # noqa: SIM115
            logs.append(log)
            env = {**local, "VERBATIM_DATA_DIR": str(tmp_path / f"api{index}")}
            env["VERBATIM_HOST"], env["VERBATIM_PORT"] = "127.0.0.1", str(port)
            procs.append(
                subprocess.Popen(_command("api"), env=_env("api", env), stdout=log, stderr=log)
            )
        worker_log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
        logs.append(worker_log)
        procs.append(
            subprocess.Popen(
                _command("worker"),
                env=_env("worker", {**local, "VERBATIM_DATA_DIR": str(tmp_path / "worker")}),
                stdout=worker_log,
                stderr=worker_log,
            )
        )
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        deadline = time.monotonic() + 180
        for base in bases:
            while True:
                assert all(p.poll() is None for p in procs), "a service exited"
                try:
                    ready = httpx.get(f"{base}/health/ready", timeout=10)
                    if ready.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "api0.log").read_text()[-3000:]
                time.sleep(0.5)
            assert ready.json()["status"] == "ok"

        # Production settings: registration is closed; the CLI-made account logs in.
        one, two = (httpx.Client(base_url=f"{b}/api/v1", timeout=60) for b in bases)
        closed = one.post(
            "/auth/register", json={"email": "x@example.com", "password": "a long password"}
        )
        assert closed.status_code == 403
        token = two.post(
            "/auth/login", json={"email": "ops@example.com", "password": "a long password"}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        with open(FIXTURES / "speech.wav", "rb") as fh:
            audio = one.post("/audio", headers=auth, files={"file": ("speech.wav", fh)})
        assert audio.status_code == 201, audio.text
        # Media went to the bucket (S3 storage), not to a container's disk.
        keys = [o["Key"] for o in moto_s3.client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert any(k.startswith("uploads/") for k in keys)
        started = one.post(
            f"/audio/{audio.json()['id']}/transcriptions", headers=auth, json={}
        ).json()
        # Neither API runs a worker: only the `worker` process can finish the job.
        deadline = time.monotonic() + 180
        while True:
            job = two.get(f"/jobs/{started['job_id']}", headers=auth).json()
            if job["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["status"] == "completed", job
        text = two.get(f"/transcriptions/{started['transcription_id']}", headers=auth).json()
        assert text["text"].strip()
        for index in range(len(ports)):
            lines = (tmp_path / f"api{index}.log").read_text().splitlines()
            events = [json.loads(line) for line in lines if line.startswith("{")]
            (started_line,) = [e for e in events if e.get("event") == "started"]
            assert started_line["worker_in_process"] is False
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
