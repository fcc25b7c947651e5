"""Invitation mail through SMTP when VERBATIM_SMTP_HOST is set, against a local SMTP server
that speaks the protocol's plain exchange (RFC 5321 sections 3.3 and 4.1: EHLO, MAIL FROM,
RCPT TO, DATA ending with a lone ".", QUIT). Without a reachable server the invitation still
works and says `mailed: false`."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from tests.conftest import make_settings, register
from tests.tenancy.helpers import create_org
from verbatim.app import create_app
from verbatim.engines.process_pool import EnginePool


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.recipients: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        while line := await reader.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                writer.write(b"250 sink\r\n")
            elif verb == "RCPT":
                self.recipients.append(command)
                writer.write(b"250 OK\r\n")
            elif verb == "DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                body = []
                while (data := (await reader.readline()).decode()) not in (".\r\n", ""):
                    body.append(data)
                self.messages.append("".join(body))
                writer.write(b"250 queued\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def invite(tmp_path: Path, database_url: str, pool: EnginePool, port: int) -> dict:  # type: ignore[type-arg]
    settings = make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        public_url="https://verbatim.example.com",
    )
    app = create_app(settings, with_worker=False, engine_pool=pool)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            owner = await register(client, "owner@example.com")
            org = await create_org(owner, "Mail Org")
            r = await owner.post(
                f"/api/v1/tenants/{org}/invitations", json={"email": "new@example.com"}
            )
            assert r.status_code == 201, r.text
            data: dict = r.json()  # type: ignore[type-arg]
            return data


async def test_invitation_is_mailed(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    sink = SmtpSink()
    port = free_port()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", port)
    async with server:
        data = await invite(tmp_path, database_url, engine_pool, port)
    assert data["mailed"] is True
    assert data["accept_url"].startswith("https://verbatim.example.com/")
    assert [r.upper() for r in sink.recipients] == ["RCPT TO:<NEW@EXAMPLE.COM>"]
    assert data["token"] in sink.messages[0].replace("=\r\n", "")
    assert "Mail Org" in sink.messages[0]


async def test_no_mail_server_still_invites(
    tmp_path: Path, database_url: str, engine_pool: EnginePool
) -> None:
    data = await invite(tmp_path, database_url, engine_pool, free_port())  # nothing listens
    assert data["mailed"] is False and data["token"]
