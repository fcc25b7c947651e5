"""Invitation mail, only when VERBATIM_SMTP_HOST is set. Without it (or when sending fails)
the inviter passes on the token and link the API returned: no mail server is needed."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

import structlog

from verbatim.config import Settings

log = structlog.get_logger(__name__)


def accept_link(settings: Settings, token: str) -> str:
    base = (settings.public_url or "").rstrip("/")
    return f"{base}/invitations/accept?token={token}"  # the web page that accepts it


def _send(settings: Settings, to: str, subject: str, body: str) -> None:
    assert settings.smtp_host is not None
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(message)


async def send_invitation(
    settings: Settings, to: str, tenant_name: str, token: str, expires: str
) -> bool:
    """True when the mail was handed to the SMTP server."""
    if not settings.smtp_host:
        return False
    body = (
        f"You are invited to join {tenant_name} on Verbatim.\n\n"
        f"Accept (logged in as {to}): POST /api/v1/invitations/accept with this token:\n"
        f"{token}\n\nLink: {accept_link(settings, token)}\nThe invitation expires {expires}.\n"
    )
    try:
        await asyncio.to_thread(_send, settings, to, f"Invitation to {tenant_name}", body)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("invitation_mail_failed", error=str(exc))
        return False
    return True
