"""`verbatim user password`: an operator sets a password; the user's sessions end."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg

from tests.auth.helpers import PASSWORD, bearer, login, tokens
from tests.conftest import ApiUser
from tests.test_cli import run_cli


async def test_user_password_sets_it_and_logs_out(
    alice: ApiUser, bob: ApiUser, database_url: str, tmp_path: Path
) -> None:
    client: httpx.AsyncClient = alice.client
    before = await tokens(client, alice.email)
    env = {"VERBATIM_DATABASE_URL": database_url, "VERBATIM_DATA_DIR": str(tmp_path / "cli")}

    r = run_cli(
        "user", "password", "--email", "ALICE@example.com", "--password", "reset pw 123", env=env
    )
    assert r.returncode == 0, r.stderr
    assert (await login(client, alice.email, PASSWORD)).status_code == 401
    assert (await login(client, alice.email, "reset pw 123")).status_code == 200
    r2 = await client.post("/api/v1/auth/refresh", json={"refresh_token": before["refresh_token"]})
    assert r2.status_code == 401
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(before["access_token"]))
    ).status_code == 401
    assert (await login(client, bob.email, PASSWORD)).status_code == 200  # Bob untouched

    # Bad input: an unknown user, a short password; nothing changes.
    with psycopg.connect(database_url) as conn:
        hashes = conn.execute('SELECT email, password_hash FROM "user" ORDER BY email').fetchall()
    r = run_cli(
        "user", "password", "--email", "nobody@example.com", "--password", "long enough", env=env
    )
    assert r.returncode == 1 and "No account" in r.stderr
    r = run_cli("user", "password", "--email", bob.email, "--password", "short", env=env)
    assert r.returncode == 2
    with psycopg.connect(database_url) as conn:
        after = conn.execute('SELECT email, password_hash FROM "user" ORDER BY email').fetchall()
    assert after == hashes
