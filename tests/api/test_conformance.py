"""HTTP conformance: 405 lists every allowed method; OpenAPI lists the errors routes give."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import ApiUser
from verbatim.app import create_app
from verbatim.config import Settings


def allow(r: httpx.Response) -> set[str]:
    """The methods in Allow, HEAD aside (listed only where a route answers it)."""
    assert r.status_code == 405, r.text
    assert r.json()["error"]["code"] == "method_not_allowed"
    return {m.strip() for m in r.headers["allow"].split(",")} - {"HEAD"}


async def test_405_lists_every_allowed_method(alice: ApiUser) -> None:
    client = alice.client
    some_id = uuid.uuid4()
    # One path, two routes (list and upload): Starlette named only the first one's methods.
    assert allow(await client.patch("/api/v1/audio", headers=alice.headers)) == {
        "GET",
        "POST",
    }
    assert allow(await client.put(f"/api/v1/audio/{some_id}", headers=alice.headers)) == {
        "GET",
        "DELETE",
    }
    assert allow(await client.put("/api/v1/audio/downloads", headers=alice.headers)) == {
        "GET",
        "POST",
    }
    assert allow(await client.put(f"/api/v1/transcriptions/{some_id}")) == {
        "GET",
        "DELETE",
    }
    assert allow(await client.delete("/api/v1/jobs")) == {"GET"}
    assert allow(await client.get(f"/api/v1/jobs/{some_id}/cancel")) == {"POST"}
    assert allow(await client.get("/api/v1/auth/login")) == {"POST"}
    # Every method listed really is routed (no 405 for it).
    for path in ("/api/v1/audio", f"/api/v1/audio/{some_id}", "/api/v1/jobs"):
        r = await client.request("PATCH", path, headers=alice.headers)
        for method in {m.strip() for m in r.headers["allow"].split(",")}:
            routed = await client.request(method, path, headers=alice.headers)
            assert routed.status_code != 405, (method, path)


@pytest.fixture(scope="module")
def openapi() -> dict[str, object]:
    app = create_app(Settings(env="test"))
    document: dict[str, object] = app.openapi()
    return document


def operations(openapi: dict[str, object]) -> list[tuple[str, str, dict[str, object]]]:
    paths = openapi["paths"]
    assert isinstance(paths, dict)
    return [(path, method, op) for path, ops in paths.items() for method, op in ops.items()]


def error_ref(response: dict[str, object]) -> str:
    content = response["content"]
    assert isinstance(content, dict)
    return str(content["application/json"]["schema"]["$ref"])


def error_schema(path: str) -> str:
    """The error body a path answers: OpenAI's shape on the OpenAI-compatible /v1 routes."""
    return "/OpenAIErrorResponse" if path.startswith("/v1/") else "/ErrorResponse"


def test_openapi_has_the_error_schema(openapi: dict[str, object]) -> None:
    schemas = openapi["components"]["schemas"]  # type: ignore[index]
    error = schemas["ErrorResponse"]
    assert error["required"] == ["error"]
    detail = schemas["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "details", "request_id"}
    # FastAPI's default validation shape is not what the API answers.
    assert "HTTPValidationError" not in schemas


def test_every_route_with_an_id_lists_404(openapi: dict[str, object]) -> None:
    checked = 0
    for path, method, op in operations(openapi):
        if "{" in path:
            responses = op["responses"]
            assert "404" in responses, (method, path)
            assert error_ref(responses["404"]).endswith(error_schema(path))
            checked += 1
    assert checked >= 10


def test_every_authenticated_route_lists_401(openapi: dict[str, object]) -> None:
    authenticated = [(p, m, op) for p, m, op in operations(openapi) if op.get("security")]
    assert len(authenticated) >= 15
    for path, method, op in authenticated:
        assert "401" in op["responses"], (method, path)
        assert error_ref(op["responses"]["401"]).endswith(error_schema(path))
    public = {(p, m) for p, m, op in operations(openapi) if not op.get("security")}
    assert ("/api/v1/auth/login", "post") in public
    assert ("/health/live", "get") in public


def test_routes_that_take_input_list_422_with_the_error_schema(
    openapi: dict[str, object],
) -> None:
    for path, method, op in operations(openapi):
        if op.get("parameters") or op.get("requestBody"):
            assert error_ref(op["responses"]["422"]).endswith(error_schema(path)), (method, path)


def test_declared_domain_errors_are_listed(openapi: dict[str, object]) -> None:
    paths = openapi["paths"]
    expected = {
        ("/api/v1/audio", "post"): {"400", "401", "413", "415", "422"},
        ("/api/v1/audio/downloads", "post"): {"401", "422", "429"},
        ("/api/v1/jobs/{job_id}/cancel", "post"): {"401", "404", "409"},
        ("/api/v1/auth/register", "post"): {"409", "422"},
        ("/api/v1/transcriptions/{transcription_id}/export", "get"): {"401", "404", "409", "422"},
        ("/api/v1/uploads/{upload_id}/complete", "post"): {"401", "404", "409", "415"},
        ("/v1/audio/transcriptions", "post"): {"400", "401", "413", "415", "504"},
    }
    for (path, method), codes in expected.items():
        responses = paths[path][method]["responses"]  # type: ignore[index]
        assert codes <= set(responses), (method, path, sorted(responses))
        for code in codes:
            assert error_ref(responses[code]).endswith(error_schema(path)), (method, path, code)
