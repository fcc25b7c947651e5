"""Checks a domain registers for writes through the local backend's presigned PUT URLs.

A signed URL stays valid until it expires, but what it was for may end sooner: a direct upload
that was completed or aborted must not take more bytes (they would be orphans until cleanup).
The storage layer knows keys, not uploads, so the uploads domain registers a check for its
`staging/` prefix here and storage calls it, before and after receiving the body. Storage never
imports a domain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from verbatim.services import Services

# Raises an AppError (409, 410, ...) when the key may not be written any more.
PutCheck = Callable[["Services", str], Awaitable[None]]

_checks: dict[str, PutCheck] = {}


def register_put_check(prefix: str, check: PutCheck) -> None:
    _checks[prefix] = check


async def check_put(services: Services, key: str) -> None:
    for prefix, check in _checks.items():
        if key.startswith(prefix):
            await check(services, key)
