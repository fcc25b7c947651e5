"""uvicorn's HTTP protocol with a bound on the request head (request line and headers).

uvicorn[standard] parses with httptools, which accumulates a header of any size (a 32 MB header
was accepted). The protocol below counts the bytes received while a request's head is incomplete
and answers 431 `headers_too_large` past the limit, closing the connection. When httptools is not
installed, uvicorn's h11 parser is bounded by `h11_max_incomplete_event_size` instead (it answers
400).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger("verbatim.http")

DEFAULT_MAX_HEADER_BYTES = 64 * 1024


class HeadTooLarge(Exception):
    pass


def _rejection(limit: int) -> bytes:
    body = json.dumps(
        {
            "error": {
                "code": "headers_too_large",
                "message": "Request headers are too large",
                "details": {"max_header_bytes": limit},
                "request_id": None,
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


def http_protocol(max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> type[asyncio.Protocol]:
    """The protocol class for `uvicorn.run(http=...)`."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol  # bounded by h11_max_incomplete_event_size (see uvicorn_options)

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        limit = max_header_bytes

        def connection_made(self, transport: Any) -> None:
            self._head_bytes = 0
            self._awaiting_head = True
            self._messages_done = 0
            super().connection_made(transport)

        def on_message_begin(self) -> None:
            self._parsed_head = 0
            self._too_large = False
            super().on_message_begin()

        def _count(self, n: int) -> None:
            # A head that arrives whole in one chunk is measured as it is parsed. Raising makes
            # httptools stop; uvicorn then calls send_400_response, which answers 431 instead.
            self._parsed_head += n
            if self._parsed_head > self.limit:
                self._too_large = True
                raise HeadTooLarge

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def send_400_response(self, msg: str) -> None:
            if getattr(self, "_too_large", False):
                self._reject()
            else:
                super().send_400_response(msg)

        def _reject(self) -> None:
            log.warning("request_headers_too_large", extra={"limit": self.limit})
            self.transport.write(_rejection(self.limit))
            self.transport.close()

        def on_headers_complete(self) -> None:
            self._awaiting_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._messages_done += 1
            self._awaiting_head = True
            self._head_bytes = 0

        def data_received(self, data: bytes) -> None:
            awaiting_before = self._awaiting_head
            done_before = self._messages_done
            super().data_received(data)
            if self.transport.is_closing() or not self._awaiting_head:
                return
            if awaiting_before and self._messages_done == done_before:
                # Every byte of this chunk belongs to the incomplete head. (When a pipelined
                # request began inside the chunk, its share is unknown: the next chunk counts.)
                self._head_bytes += len(data)
            if self._head_bytes > self.limit:
                self._reject()

    return BoundedHttpToolsProtocol


def uvicorn_options(max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run/Config that bound the request head."""
    return {
        "http": http_protocol(max_header_bytes),
        "h11_max_incomplete_event_size": max_header_bytes,
    }


def __getattr__(name: str) -> Any:
    """`verbatim.httpserver:EnvBoundedProtocol`: the protocol bounded by the settings of the
    process that loads it. Several API processes (`serve --api-workers`) are started by
    uvicorn, which passes the protocol by import string since a class made in a function
    cannot be sent to another process."""
    if name == "EnvBoundedProtocol":
        from verbatim.config import get_settings

        return http_protocol(get_settings().max_header_bytes)
    raise AttributeError(name)
