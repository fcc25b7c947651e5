"""The client address and request id of the request being served, for audit rows.

Set once per request by `app.RequestContextMiddleware`; outside a request (workers, the CLI)
both are None.
"""

from __future__ import annotations

from contextvars import ContextVar

_address: ContextVar[str | None] = ContextVar("verbatim_client_address", default=None)
_request_id: ContextVar[str | None] = ContextVar("verbatim_request_id", default=None)


def bind(address: str | None, request_id: str | None) -> None:
    _address.set(address)
    _request_id.set(request_id)


def client_address() -> str | None:
    return _address.get()


def request_id() -> str | None:
    return _request_id.get()
