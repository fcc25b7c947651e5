"""JSON answers written with orjson, for bodies too large for the default path.

FastAPI's default path validates the returned objects against the response model and then
encodes them; for a 30,000-word transcript that was most of a 200 ms answer. Endpoints that use
this build the body from plain rows themselves (keeping `response_model` for the OpenAPI
document) and may splice JSON that PostgreSQL already wrote (`raw_json`, e.g. a jsonb column
read as text) without decoding and encoding it again.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

# Datetimes as pydantic writes them in UTC ("...Z"); NaN and infinities become null as well.
_OPTIONS = orjson.OPT_UTC_Z


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, option=_OPTIONS)


def raw_json(text: str | bytes | None, default: bytes = b"null") -> orjson.Fragment:
    """Already-encoded JSON, written into the answer as it is."""
    return orjson.Fragment(text if text is not None else default)


class FastJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
