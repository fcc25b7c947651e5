"""OpenAI-compatible routes: /v1/audio/transcriptions, /v1/audio/translations, /v1/models.

Authenticated like the rest of the API (an API key as `Authorization: Bearer`, the way OpenAI's
SDKs send theirs). Errors come in OpenAI's shape (openai_api/errors.py). The endpoints hold no
request session: ingest and queueing commit in their own unit of work, then the request waits
for the worker with no connection held.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from verbatim.audio.ingest import receive_upload
from verbatim.deps import ApiCaller, ServicesDep
from verbatim.openai_api import service, streaming
from verbatim.openai_api.errors import OpenAIError
from verbatim.openai_api.schemas import STORE_HEADER, parse_form

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "model": {"type": "string", "example": "whisper-1"},
                        "language": {"type": "string", "example": "en"},
                        "prompt": {"type": "string"},
                        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                        "response_format": {
                            "type": "string",
                            "enum": ["json", "text", "srt", "vtt", "verbose_json"],
                        },
                        "timestamp_granularities[]": {
                            "type": "array",
                            "items": {"type": "string", "enum": ["word", "segment"]},
                        },
                        "stream": {"type": "boolean"},
                        "store": {
                            "type": "boolean",
                            "description": "false: keep nothing in the library",
                        },
                    },
                }
            }
        },
    }
}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "json/verbose_json as JSON; text, srt and vtt as text/plain; with "
        "stream=true, text/event-stream",
        "content": {"text/plain": {}, "text/event-stream": {}},
    },
    400: {"description": "invalid_value, missing_model, model_not_found, empty_file, ..."},
    409: {"description": "job_cancelled"},
    413: {"description": "file_too_large"},
    415: {"description": "unsupported_media"},
    500: {"description": "the transcription job failed"},
    504: {"description": "job_timeout: still running; the error names the job to poll"},
}


async def _audio(
    request: Request,
    caller: ApiCaller,
    services: ServicesDep,
    task: Literal["transcribe", "translate"],
) -> Response:
    settings = services.settings
    received = await receive_upload(
        dict(request.headers), request.stream(), settings.tmp_dir, settings.max_upload_bytes
    )
    try:
        req = parse_form(received.fields, task, request.headers.get(STORE_HEADER))
        model_name, _ = await service.resolve(services, req)
    except BaseException:
        received.path.unlink(missing_ok=True)
        raise
    started = await service.start(services, caller, received, req, model_name)
    timeout_s = settings.openai_wait_timeout_s
    if req.stream:
        return StreamingResponse(
            streaming.events(services, caller, started, timeout_s),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", **service.library_headers(started)},
        )
    try:
        outcome = await service.wait(services, request, started.job_id, timeout_s)
    except service.ClientGone:
        if not started.store:
            await service.discard(services, caller, started)
        raise
    if outcome is None:
        if not started.store:
            await service.discard(services, caller, started)
        raise service.timed_out(started, timeout_s)
    try:
        if outcome.status.value != "completed":
            raise service.failure(started, outcome)
        return await service.answer(services, caller, started, req)
    finally:
        # Nothing kept: deleted before the answer leaves, so a client that has its answer
        # never finds the request in the library.
        if not started.store:
            with contextlib.suppress(Exception):
                await service.discard(services, caller, started)


@router.post("/audio/transcriptions", openapi_extra=_FORM, responses=_ANSWERS)
async def create_transcription(
    request: Request, caller: ApiCaller, services: ServicesDep
) -> Response:
    """OpenAI's `POST /v1/audio/transcriptions`; the file and its transcript are kept in your
    library unless `store=false` (or the `X-Verbatim-Store: false` header)."""
    return await _audio(request, caller, services, "transcribe")


@router.post("/audio/translations", openapi_extra=_FORM, responses=_ANSWERS)
async def create_translation(
    request: Request, caller: ApiCaller, services: ServicesDep
) -> Response:
    """OpenAI's `POST /v1/audio/translations`: speech in any language to English text
    (multilingual models only)."""
    return await _audio(request, caller, services, "translate")


@router.get("/models", responses={200: {"description": "OpenAI's model list"}})
async def list_models(caller: ApiCaller, services: ServicesDep) -> dict[str, Any]:
    """The models a request may name: OpenAI's names (the default model), engines, and the
    installed local models."""
    import asyncio

    data = await asyncio.to_thread(service.list_models, services)
    return {"object": "list", "data": data}


@router.get("/models/{model_id:path}", responses={404: {"description": "model_not_found"}})
async def get_model(model_id: str, caller: ApiCaller, services: ServicesDep) -> dict[str, Any]:
    import asyncio

    for entry in await asyncio.to_thread(service.list_models, services):
        if entry["id"] == model_id:
            return entry
    raise OpenAIError(
        f"The model '{model_id}' does not exist", code="model_not_found", status=404, param="model"
    )
