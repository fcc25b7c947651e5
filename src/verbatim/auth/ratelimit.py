"""Login and registration rate limits: fixed-window counters in the database.

One row per key (`login:account:<email digest>`, `login:address:<ip>`, `register:address:<ip>`),
counted with one atomic upsert, so every API process sees the same counts. A hit is committed in
its own short transaction (the caller's unit of work), never the request's: a login that fails
with 401 rolls the request back, and its attempt must still count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.config import Settings
from verbatim.errors import TooManyRequests
from verbatim.models import RateLimit

# Stale rows removed per hit (counters of keys not seen for a whole window): bounded work.
PRUNE_BATCH = 50

_HIT = text(
    """
    INSERT INTO rate_limit (key, window_start, count) VALUES (:key, now(), 1)
    ON CONFLICT (key) DO UPDATE SET
        count = CASE WHEN rate_limit.window_start <= now() - :window
                     THEN 1 ELSE rate_limit.count + 1 END,
        window_start = CASE WHEN rate_limit.window_start <= now() - :window
                            THEN now() ELSE rate_limit.window_start END
    RETURNING count, window_start, now()
    """
)


@dataclass(frozen=True)
class Limit:
    key: str
    limit: int
    window: timedelta
    what: str  # for the message: "failed logins for this account"


def login_limits(settings: Settings, email_digest: str, address: str) -> list[Limit]:
    window = timedelta(seconds=settings.login_rate_window_s)
    return [
        Limit(
            f"login:address:{address}",
            settings.login_rate_per_address,
            window,
            "logins from this address",
        ),
        Limit(
            f"login:account:{email_digest}",
            settings.login_rate_per_account,
            window,
            "failed logins for this account",
        ),
    ]


def register_limits(settings: Settings, address: str) -> list[Limit]:
    window = timedelta(seconds=settings.register_rate_window_s)
    return [
        Limit(
            f"register:address:{address}",
            settings.register_rate_per_address,
            window,
            "registrations from this address",
        ),
    ]


async def hit(session: AsyncSession, limits: list[Limit]) -> None:
    """Count one attempt against every limit; TooManyRequests if any is exceeded.

    Raise inside the caller's transaction: it rolls back, so a refused attempt is not counted
    (a client that keeps knocking does not extend its own wait). Keys are always taken in the
    same order (address, then account), so concurrent hits cannot deadlock.
    """
    retry_after = 0
    refused: list[str] = []
    for item in limits:
        count, window_start, now = (
            await session.execute(_HIT, {"key": item.key[:200], "window": item.window})
        ).one()
        if count > item.limit:
            wait = (window_start + item.window - now).total_seconds()
            retry_after = max(retry_after, max(1, math.ceil(wait)))
            refused.append(f"at most {item.limit} {item.what} per {_span(item.window)}")
    windows = {item.key.split(":", 1)[0]: item.window for item in limits}
    for kind, window in windows.items():
        await _prune(session, kind, window)
    if refused:
        raise TooManyRequests(
            f"Too many attempts ({'; '.join(refused)}); try again in {retry_after} s",
            retry_after_s=retry_after,
        )


async def refund(session: AsyncSession, item: Limit) -> None:
    """Take one attempt back (a login that succeeded is not a failed login)."""
    await session.execute(
        update(RateLimit)
        .where(RateLimit.key == item.key[:200], RateLimit.count > 0)
        .values(count=RateLimit.count - 1)
    )


async def _prune(session: AsyncSession, kind: str, window: timedelta) -> None:
    """Delete a few counters of this kind (`login`, `register`) whose window has passed."""
    stale = (
        select(RateLimit.key)
        .where(
            RateLimit.key.startswith(f"{kind}:", autoescape=True),
            RateLimit.window_start < text("now() - :age").bindparams(age=window),
        )
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(delete(RateLimit).where(RateLimit.key.in_(stale)))


def _span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
