"""Small helpers shared by the auth tests."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

PASSWORD = "correct horse battery"  # what tests.conftest.register uses


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def tokens(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await login(client, email, password)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def count_rows(model: Any, *where: Any) -> int:
    from verbatim.services import get_services

    async with get_services().sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
