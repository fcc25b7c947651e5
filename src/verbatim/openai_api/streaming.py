"""`stream=true`: server-sent events as OpenAI documents them for streamed transcription.

Events (https://platform.openai.com/docs/api-reference/audio/transcript-text-delta-event and
.../transcript-text-done-event; the openai-python SDK's TranscriptionTextDeltaEvent and
TranscriptionTextDoneEvent): `data: {"type": "transcript.text.delta", "delta": "..."}` for each
segment as the engine finishes it, then `data: {"type": "transcript.text.done", "text": "..."}`.
The deltas joined are the done event's text. An error after the stream started is sent as
`data: {"error": {...}}` (the SDK raises it as an APIError) and ends the stream.

Segments reach this process through `partial_segment` rows the worker writes as it decodes
(transcriptions/partial.py), read here every POLL_S; at the end the stored segments settle it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from sqlalchemy import select

from verbatim.db import session_scope
from verbatim.models import JobStatus, Segment, Transcription, User
from verbatim.openai_api import service
from verbatim.openai_api.errors import OpenAIError, error_type
from verbatim.services import Services
from verbatim.transcriptions.partial import read_partial

POLL_S = 0.2
# A comment line after this long without an event, so proxies do not close an idle stream (SSE
# clients, the OpenAI SDK's included, skip comment lines).
KEEPALIVE_S = 15.0


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _error_event(exc: OpenAIError) -> bytes:
    details = exc.details if isinstance(exc.details, dict) else {}
    return _event(
        {
            "error": {
                "message": exc.message,
                "type": error_type(exc.status_code),
                "param": details.get("param"),
                "code": exc.code,
                **{k: v for k, v in details.items() if k != "param"},
            }
        }
    )


def _delta(index: int, text: str) -> bytes:
    return _event({"type": "transcript.text.delta", "delta": (" " if index else "") + text})


async def events(
    services: Services, caller: User, started: service.Started, timeout_s: float
) -> AsyncIterator[bytes]:
    sent = 0  # index of the next segment to send
    deadline = time.monotonic() + timeout_s
    last_event = time.monotonic()
    try:
        while True:
            outcome = await service.job_outcome(services, started.job_id)
            if outcome is not None and outcome.status is JobStatus.completed:
                text, rest = await _final(services, started, sent)
                for index, seg_text in rest:
                    yield _delta(index, seg_text)
                yield _event({"type": "transcript.text.done", "text": text})
                return
            if outcome is not None:
                yield _error_event(service.failure(started, outcome))
                return
            async with session_scope(services.autocommit_sessionmaker) as session:
                fresh = await read_partial(session, started.transcription_id, sent)
            for index, seg_text in fresh:
                if index == sent:  # in order, never twice
                    yield _delta(index, seg_text)
                    sent += 1
                    last_event = time.monotonic()
            if time.monotonic() - last_event >= KEEPALIVE_S:
                yield b": keepalive\n\n"
                last_event = time.monotonic()
            if time.monotonic() >= deadline:
                yield _error_event(service.timed_out(started, timeout_s))
                return
            await asyncio.sleep(POLL_S)
    finally:
        if not started.store:
            # The client may be gone (the stream cancelled): finish the clean-up regardless.
            with anyio.CancelScope(shield=True):
                await service.discard(services, caller, started)


async def _final(
    services: Services, started: service.Started, sent: int
) -> tuple[str, list[tuple[int, str]]]:
    async with session_scope(services.autocommit_sessionmaker) as session:
        text = await session.scalar(
            select(Transcription.text).where(Transcription.id == started.transcription_id)
        )
        rows = await session.execute(
            select(Segment.index, Segment.text)
            .where(Segment.transcription_id == started.transcription_id, Segment.index >= sent)
            .order_by(Segment.index)
        )
        rest = [(int(i), str(t)) for i, t in rows]
    return text or "", rest
