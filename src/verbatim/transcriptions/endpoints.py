from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.audit import service as audit
from verbatim.deps import CurrentUser, Reader, ReadSessionDep, ServicesDep, SessionDep, SettingsDep
from verbatim.errors import Conflict
from verbatim.kit.fastjson import FastJSONResponse
from verbatim.kit.http import absolute_url, content_disposition, etag_matches
from verbatim.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Limit, Offset, PageQuery
from verbatim.models import TranscriptionStatus, User
from verbatim.reconciliation import service as multi
from verbatim.services import Services
from verbatim.speakers.service import speaker_out, transcription_speakers
from verbatim.transcriptions import agent, outputs, service
from verbatim.transcriptions.export_links import presigned_export
from verbatim.transcriptions.schemas import (
    OutputLinks,
    SegmentPage,
    TranscriptionCreate,
    TranscriptionOut,
    TranscriptionPage,
    TranscriptionStarted,
    TranscriptionSummary,
)

router = APIRouter(prefix="/api/v1", tags=["transcriptions"])

# Segments in GET /transcriptions/{id} unless asked otherwise: about an hour of speech.
DEFAULT_SEGMENTS = 200


@router.post(
    "/audio/{audio_id}/transcriptions",
    response_model=TranscriptionStarted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        410: {"description": "media_expired"},
        422: {
            "description": "model_unavailable, engine_unavailable, mode_unsupported, "
            "engines_exclusive, engines_count_invalid, engines_duplicate, ..."
        },
    },
)
async def start_transcription(
    audio_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    body: TranscriptionCreate | None = None,
) -> object:
    """Queue a transcription; follow it with GET /api/v1/jobs/{job_id}. With `engines`, each
    engine runs as its own job and the returned job reconciles their results once they end."""
    body = body or TranscriptionCreate()
    if body.engines is not None:
        transcription, job = await multi.request_multi(session, settings, user, audio_id, body)
    else:
        transcription, job = await service.request_transcription(
            session, settings, user, audio_id, body
        )
    return {"transcription_id": transcription.id, "job_id": job.id, "status": transcription.status}


@router.get("/transcriptions", response_model=TranscriptionPage)
async def list_transcriptions(
    user: Reader,
    session: ReadSessionDep,
    page: PageQuery,
    status: TranscriptionStatus | None = None,
    audio_file_id: uuid.UUID | None = None,
    language: Annotated[str | None, Query(max_length=20)] = None,
) -> object:
    """Your transcriptions, newest first, without their text (GET one for it). Follow
    `next_cursor` (pass it as `cursor`) for the next page; `total` is exact up to 10,000, then
    an estimate (`total_exact: false`)."""
    result = await service.list_transcriptions(
        session,
        user,
        status=status,
        audio_file_id=audio_file_id,
        language=language,
        page=page,
    )
    return result.response()


_WORDS = Query(description="Include each segment's words (false: words are [])")


@router.get("/transcriptions/{transcription_id}", response_model=TranscriptionOut)
async def get_transcription(
    transcription_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    segments_limit: Annotated[
        int, Query(ge=0, le=MAX_LIMIT, description="Segments in this answer (0: none)")
    ] = DEFAULT_SEGMENTS,
    segments_offset: Offset = 0,
    words: Annotated[bool, _WORDS] = True,
) -> object:
    """The transcription with one page of its segments (`segments_total` says how many there
    are); page through the rest here or at /transcriptions/{id}/segments."""
    transcription = await service.get_transcription(session, user, transcription_id)
    segments, total = await service.segment_rows(
        session, transcription.id, limit=segments_limit, offset=segments_offset, words=words
    )
    summary = TranscriptionSummary.model_validate(transcription).model_dump()
    speakers = await transcription_speakers(session, transcription.id)
    # Built from rows and written by orjson (the words as stored): decision 0010.
    return FastJSONResponse(
        {
            **summary,
            "text": transcription.text,
            "quality": transcription.quality,
            "speakers": [speaker_out(s) for s in speakers],
            "segments": segments,
            "segments_total": total,
            "segments_offset": segments_offset,
            "segments_limit": segments_limit,
        }
    )


@router.get("/transcriptions/{transcription_id}/segments", response_model=SegmentPage)
async def list_segments(
    transcription_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    words: Annotated[bool, _WORDS] = True,
) -> object:
    """The transcription's segments in order, paged."""
    transcription = await service.get_transcription(session, user, transcription_id)
    items, total = await service.segment_rows(
        session, transcription.id, limit=limit, offset=offset, words=words
    )
    return FastJSONResponse({"items": items, "total": total, "limit": limit, "offset": offset})


@router.delete("/transcriptions/{transcription_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_transcription(
    transcription_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    background: BackgroundTasks,
) -> Response:
    """Delete the transcription, its versions and its stored files."""
    tenant_id = await service.delete_transcription(session, user, transcription_id)
    # Runs after the transaction committed (the session dependency ends before the response).
    background.add_task(outputs.delete_outputs, services.storage, [(tenant_id, transcription_id)])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/transcriptions/{transcription_id}/export",
    response_class=Response,
    responses={
        409: {"description": "transcription_not_ready"},
        422: {"description": "unsupported_format"},
        200: {
            "content": {
                "text/plain": {},
                "application/x-subrip": {},
                "text/vtt": {},
                "application/json": {},
                "text/csv": {},
                "text/tab-separated-values": {},
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {},
            }
        },
    },
)
async def export_transcription(
    transcription_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    format: Annotated[
        str,
        Query(
            max_length=10,
            description="txt, srt, vtt, json, csv, tsv, docx or agent (any case)",
        ),
    ] = "txt",
    presigned: Annotated[
        bool, Query(description="Answer {url, expires_at} (a short-lived link) instead")
    ] = False,
    version: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="Export this version (default: the current one)"),
    ] = None,
) -> Response:
    """Download as txt, srt, vtt, json, csv, tsv, docx or agent (the compact JSON for LLM agents,
    schema at /api/v1/schemas/agent-transcript.json); or get a short-lived link to it.
    Dialogue transcriptions carry speaker names: "Name: text" turns (txt), a name prefix (srt),
    `<v Name>` (vtt), a speaker column (csv), a speaker field and a speakers list with talk time
    (json), turns with timestamps (docx)."""
    return await _download(
        request, user, session, services, transcription_id, format, presigned, version
    )


@router.get(
    "/transcriptions/{transcription_id}/agent",
    response_class=Response,
    responses={
        409: {"description": "transcription_not_ready"},
        200: {"content": {"application/json": {}}},
    },
)
async def agent_transcript(
    transcription_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    presigned: Annotated[
        bool, Query(description="Answer {url, expires_at} (a short-lived link) instead")
    ] = False,
) -> Response:
    """The transcript for LLM agents: speaker turns (or paragraphs) with start times, speakers
    with talk time, language, duration, confidence and topics; no per-word detail. Stable:
    `schema_version`, JSON Schema at /api/v1/schemas/agent-transcript.json."""
    return await _download(request, user, session, services, transcription_id, "agent", presigned)


@router.get("/schemas/agent-transcript.json", tags=["schemas"])
async def agent_transcript_schema() -> JSONResponse:
    """JSON Schema of the agent transcript (public: it describes a format, not anyone's data)."""
    return JSONResponse(agent.json_schema(), media_type="application/schema+json")


async def _download(
    request: Request,
    user: User,
    session: AsyncSession,
    services: Services,
    transcription_id: uuid.UUID,
    format: str,
    presigned: bool,
    version: int | None = None,
) -> Response:
    source = await service.export_transcription(session, user, transcription_id, format, version)
    cache_headers = {"ETag": source.etag, "Cache-Control": "private, no-cache"}
    if not presigned and etag_matches(request, source.etag):
        return Response(status_code=304, headers=cache_headers)
    rendered = await service.render_source(source)
    if presigned:
        expires_s = services.settings.presigned_get_expires_s
        link = await presigned_export(services.storage, user, transcription_id, rendered, expires_s)
        await audit.record_for(
            session,
            user,
            audit.Action.export_link,
            "transcription",
            transcription_id,
            {"format": format, "version": version, "expires_at": link.expires_at.isoformat()},
        )
        return JSONResponse(
            {
                "url": absolute_url(request, link.url, services.settings.public_url),
                "expires_at": link.expires_at.isoformat(),
                "filename": link.filename,
                "content_type": link.content_type,
            }
        )
    return Response(
        rendered.content,
        media_type=rendered.media_type,
        headers={"Content-Disposition": content_disposition(rendered.filename), **cache_headers},
    )


_OUTPUT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "transcription_not_found"},
    409: {"description": "transcription_not_ready"},
}


async def _completed(session: AsyncSession, user: User, transcription_id: uuid.UUID) -> Any:
    transcription = await service.get_transcription(session, user, transcription_id)
    if transcription.status is not TranscriptionStatus.completed:
        raise Conflict(
            f"The transcription is {transcription.status.value}, not completed",
            code="transcription_not_ready",
        )
    return transcription


@router.get(
    "/transcriptions/{transcription_id}/raw",
    response_class=Response,
    responses={**_OUTPUT_ERRORS, 200: {"content": {"application/json": {}}}},
)
async def raw_transcript(
    transcription_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
    presigned: Annotated[
        bool, Query(description="Answer {url, expires_at} (a short-lived link) instead")
    ] = False,
) -> Response:
    """The stored `raw_transcript.json`: engine, model, options, the provider's raw response,
    every segment with its words, the metrics, the current version number. Rebuilt from the
    database first when missing or older than the current version."""
    transcription = await _completed(session, user, transcription_id)
    raw = await outputs.ensure_outputs(
        session, services.sessionmaker, services.storage, transcription
    )
    if presigned:
        links = await _links(request, user, session, services, transcription, ensured=True)
        return JSONResponse(
            {
                "url": links["raw_url"],
                "expires_at": links["expires_at"],
                "filename": outputs.RAW_NAME,
                "content_type": outputs.JSON,
            }
        )
    return Response(
        raw,
        media_type=outputs.JSON,
        headers={"Content-Disposition": content_disposition(outputs.RAW_NAME)},
    )


@router.get(
    "/transcriptions/{transcription_id}/links",
    response_model=OutputLinks,
    responses=_OUTPUT_ERRORS,
)
async def output_links(
    transcription_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> object:
    """Short-lived links to the two stored files (`raw_transcript.json` and
    `agent_optimized.json`): presigned S3 URLs, or URLs signed by this API with local storage."""
    transcription = await _completed(session, user, transcription_id)
    return await _links(request, user, session, services, transcription, ensured=False)


async def _links(
    request: Request,
    user: User,
    session: AsyncSession,
    services: Services,
    transcription: Any,
    *,
    ensured: bool,
) -> dict[str, Any]:
    if not ensured:
        await outputs.ensure_outputs(
            session, services.sessionmaker, services.storage, transcription
        )
    expires_s = services.settings.presigned_get_expires_s
    urls = {}
    for field, name in (("raw_url", outputs.RAW_NAME), ("agent_url", outputs.AGENT_NAME)):
        key = outputs.output_key(transcription.tenant_id, transcription.id, name)
        url = await asyncio.to_thread(
            services.storage.presigned_get, key, expires_s, name, outputs.JSON, False
        )
        urls[field] = absolute_url(request, url, services.settings.public_url)
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_s)
    await audit.record_for(
        session,
        user,
        audit.Action.export_link,
        "transcription",
        transcription.id,
        {"format": "outputs", "expires_at": expires_at.isoformat()},
    )
    return {**urls, "expires_at": expires_at.isoformat()}
