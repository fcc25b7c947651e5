"""A bounded schemathesis run over every operation of the OpenAPI document, against the real
app served by uvicorn on 127.0.0.1 with the embedded PostgreSQL: no server errors, and every
response matches the documented status codes and schemas (issue 7, section 8)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.conftest import FIXTURES, make_settings
from verbatim.app import create_app

# Examples per operation and phase; about 2 minutes for the whole run on 2 busy cores.
MAX_EXAMPLES = int(os.environ.get("VERBATIM_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[str]:
    """The app on a real socket, without the in-process worker (nothing queued runs)."""
    settings = make_settings(tmp_path, database_url, download_rate_per_hour=100_000)
    app = create_app(settings, with_worker=False)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def seed(client: httpx.Client, token: str) -> tuple[dict[str, str], dict[str, str]]:
    """Two of each record the id routes name: one to read and act on, one to delete."""
    headers = {"Authorization": f"Bearer {token}"}
    sets: list[dict[str, str]] = []
    for _ in range(2):
        with (FIXTURES / "speech.wav").open("rb") as fh:
            data = fh.read()
        # Different bytes each time, or the second upload is the first one again.
        r = client.post(
            "/api/v1/audio",
            headers=headers,
            files={"file": (f"seed-{len(sets)}.wav", data + bytes(len(sets)), "audio/wav")},
        )
        assert r.status_code == 201, r.text
        audio_id = r.json()["id"]
        r = client.post(f"/api/v1/audio/{audio_id}/transcriptions", headers=headers, json={})
        assert r.status_code == 202, r.text
        started = r.json()
        r = client.post(
            "/api/v1/uploads", headers=headers, json={"filename": "a.wav", "size": 1000}
        )
        assert r.status_code == 201, r.text
        r2 = client.post("/api/v1/api-keys", headers=headers, json={"name": "seed"})
        assert r2.status_code == 201, r2.text
        r3 = client.post("/api/v1/collections", headers=headers, json={"name": "seed"})
        assert r3.status_code == 201, r3.text
        r4 = client.post(
            f"/api/v1/collections/{r3.json()['id']}/items",
            headers=headers,
            json={"transcription_id": started["transcription_id"]},
        )
        assert r4.status_code == 201, r4.text
        r5 = client.post("/api/v1/topics", headers=headers, json={"name": f"seed {len(sets)}"})
        assert r5.status_code == 201, r5.text
        r6 = client.post(
            "/api/v1/webhooks", headers=headers, json={"url": "https://example.com/hook"}
        )
        assert r6.status_code == 201, r6.text
        r7 = client.post(f"/api/v1/webhooks/{r6.json()['id']}/test", headers=headers)
        assert r7.status_code == 202, r7.text
        sets.append(
            {
                "audio_id": audio_id,
                "transcription_id": started["transcription_id"],
                "job_id": started["job_id"],
                "upload_id": r.json()["id"],
                "key_id": r2.json()["id"],
                "collection_id": r3.json()["id"],
                "topic_id": r5.json()["id"],
                "webhook_id": r6.json()["id"],
                "delivery_id": r7.json()["id"],
            }
        )
    return sets[0], sets[1]


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(served: str, tmp_path: Path) -> None:
    email, password = "fuzz@example.com", "correct horse battery"
    with httpx.Client(base_url=served, timeout=30) as client:
        r = client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        (tmp_path / "openapi.json").write_text(client.get("/openapi.json").text)
        ids = seed(client, token)

    # Real ids, so operations on one record reach their logic instead of answering 404;
    # DELETE operations get records of their own, so the others keep theirs.
    config = tmp_path / "schemathesis.toml"
    keep, drop = ids
    config.write_text(
        "[parameters]\n"
        + "".join(f'{name} = "{value}"\n' for name, value in keep.items())
        + '\n[[operations]]\ninclude-method = "DELETE"\nparameters = { '
        + ", ".join(f'{name} = "{value}"' for name, value in drop.items())
        + " }\n"
    )

    report = tmp_path / "report.json"
    started = time.monotonic()
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(config),
            "run",
            str(tmp_path / "openapi.json"),
            "--url",
            served,
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "7",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            # The event streams stay open while a job runs (none does here): they have their
            # own tests (tests/events).
            "--exclude-path-regex",
            r"/events$",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        cwd=tmp_path,  # schemathesis keeps a cache in .schemathesis/ of its working directory
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    assert report.exists(), output[-5000:]
    data = json.loads(report.read_text())
    cases = data["test_cases"]
    print(
        f"schemathesis: {cases['generated']} cases over {data['operations']['tested']} "
        f"operations in {elapsed:.0f} s; failures: {data['failures']}"
    )
    # Every operation but the two event streams excluded above.
    assert data["operations"]["tested"] == data["operations"]["total"] - 2 >= 30
    assert cases["generated"] >= 30 * MAX_EXAMPLES // 5
    assert cases["with_failures"] == 0 and not data["failures"], output[-20000:]
    assert not data["errors"], output[-20000:]
    assert run.returncode == 0, output[-20000:]
