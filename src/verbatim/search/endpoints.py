from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from verbatim.deps import CurrentUser, SessionDep, SettingsDep
from verbatim.kit.http import absolute_url
from verbatim.models import SourceType
from verbatim.search import service
from verbatim.search.query import Filters
from verbatim.search.schemas import SearchMode, SearchPage

router = APIRouter(prefix="/api/v1", tags=["search"])

MAX_PAGE = 100


def _seconds(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@router.get(
    "/search",
    response_model=SearchPage,
    responses={
        404: {"description": "audio_not_found, collection_not_found, topic_not_found"},
        422: {
            "description": "query_empty, query_too_long, invalid_cursor, invalid_date_range, "
            "validation_error"
        },
    },
)
async def search(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    q: Annotated[
        str,
        Query(
            description='What to look for: words, a "quoted phrase", -excluded words '
            "(websearch syntax), or a question in plain language (1..1000 characters)",
            examples=["moving the delivery to March"],
        ),
    ],
    mode: Annotated[
        SearchMode,
        Query(
            description="hybrid: meaning and words fused (reciprocal rank fusion); semantic: "
            "meaning only (embeddings); text: words only (full-text)"
        ),
    ] = SearchMode.hybrid,
    collection_id: Annotated[uuid.UUID | None, Query(description="Only this collection")] = None,
    topic_id: Annotated[
        uuid.UUID | None, Query(description="Only transcriptions in this topic")
    ] = None,
    audio_file_id: Annotated[uuid.UUID | None, Query(description="Only this recording")] = None,
    language: Annotated[
        str | None,
        Query(pattern=r"^[a-z]{2,3}$", description="Transcription language (ISO 639-1)"),
    ] = None,
    speaker: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Only chunks of this speaker: label or given name, any case",
        ),
    ] = None,
    source_type: Annotated[SourceType | None, Query(description="How the media came in")] = None,
    date_from: Annotated[
        date | None,
        Query(alias="from", description="Recordings added on or after this day (UTC)"),
    ] = None,
    date_to: Annotated[
        date | None,
        Query(alias="to", description="Recordings added on or before this day (UTC)"),
    ] = None,
    min_duration: Annotated[
        float | None,
        Query(ge=0, le=1e7, description="Recordings at least this many seconds long"),
    ] = None,
    group_by: Annotated[
        Literal["chunk", "transcription"],
        Query(description="transcription: the best hit of each recording, with its count of hits"),
    ] = "chunk",
    highlight: Annotated[
        Literal["words", "meaning"],
        Query(
            description="words: matched words only (ts_headline). meaning: also, for hits found "
            "by meaning alone, the sentence closest to the query (embeds the page's sentences: "
            "one more model call, about 0.2 s on two cores)"
        ),
    ] = "words",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="next_cursor of the previous page of this search"),
    ] = None,
) -> object:
    """Search the caller's transcripts by meaning and by words; each hit lands on its second.

    Hits are chunks of completed transcriptions (about 100-250 words, never across a speaker
    turn). Words are matched with the text search configuration of each transcription's
    language; a quoted phrase must appear as written. The deep link plays the recording from
    the hit's start.
    """
    from verbatim.search import embedding

    public = settings.public_url

    def media_url(audio_id: uuid.UUID, start: float) -> str:
        url = absolute_url(request, f"/api/v1/audio/{audio_id}/content", public)
        return f"{url}#t={_seconds(start)}"

    def page_url(audio_id: uuid.UUID, transcription_id: uuid.UUID, start: float) -> str:
        # The recording page seeks to `t` and shows this transcription.
        path = f"/recordings/{audio_id}?transcription={transcription_id}&t={_seconds(start)}"
        return absolute_url(request, path, public)

    req = service.SearchRequest(
        q=q,
        mode=mode,
        filters=Filters(
            audio_file_id=audio_file_id,
            collection_id=collection_id,
            topic_id=topic_id,
            language=language,
            speaker=speaker,
            source_type=source_type.value if source_type is not None else None,
            date_from=date_from,
            date_to=date_to,
            min_duration=min_duration,
        ),
        limit=limit,
        cursor=cursor,
        group_by_transcription=group_by == "transcription",
    )
    return await service.search(
        session,
        settings,
        user,
        req,
        model=service.QueryModel(
            embed_query=lambda text: embedding.embed_query(text, settings),
            embed_sentences=(
                (lambda texts: asyncio.to_thread(embedding.get_embedder(settings).embed, texts))
                if highlight == "meaning"
                else None
            ),
        ),
        media_url=media_url,
        page_url=page_url,
    )
