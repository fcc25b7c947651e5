"""Shapes of `GET /api/v1/search`."""

from __future__ import annotations

import enum
import uuid
from typing import Literal

from pydantic import BaseModel, Field


class SearchMode(enum.StrEnum):
    hybrid = "hybrid"
    semantic = "semantic"
    text = "text"


class Retriever(enum.StrEnum):
    semantic = "semantic"
    text = "text"


class HighlightSpan(BaseModel):
    start: int = Field(description="Offset of the first highlighted character in `text`")
    end: int = Field(description="Offset just past the last highlighted character")


class DeepLink(BaseModel):
    media_url: str = Field(
        description="The recording through the API, with a media fragment that starts playback "
        "at the hit (`#t=start`); send it with the caller's credentials",
        examples=["https://verbatim.example/api/v1/audio/9b2c.../content#t=754.2"],
    )
    start_time: float = Field(
        description="Where playback starts: the first highlighted word (timed by the "
        "transcript's word timestamps), or the chunk's start"
    )
    page_url: str | None = Field(
        default=None,
        description="The web page playing the recording from the hit, with this transcript",
        examples=["https://verbatim.example/recordings/9b2c...?transcription=41f0...&t=754.2"],
    )


class SearchHit(BaseModel):
    chunk_id: int
    transcription_id: uuid.UUID
    audio_file_id: uuid.UUID
    title: str = Field(description="The recording's title, or its file name")
    language: str | None = None
    text: str = Field(description="The chunk's text, as stored")
    highlights: list[HighlightSpan] = Field(
        description="Matched words (text retriever: ts_headline), or the sentence closest in "
        "meaning to the query (semantic retriever only), as offsets into `text`"
    )
    highlight_kind: Literal["words", "sentence", "none"]
    snippet: str = Field(
        description="`text` with the highlights wrapped in <mark>...</mark>, HTML-escaped"
    )
    start_time: float = Field(description="Seconds from the start of the recording")
    end_time: float
    speaker: str | None = Field(default=None, description="The speaker's label (dialogue mode)")
    speaker_name: str | None = Field(
        default=None, description="The name the speaker was given, if any"
    )
    score: float = Field(description="Reciprocal rank fusion score: sum of 1 / (k + rank)")
    retrievers: list[Retriever] = Field(description="Which retrievers found this chunk")
    semantic_rank: int | None = Field(
        default=None, description="Rank in the semantic list (1 = best)"
    )
    text_rank: int | None = Field(default=None, description="Rank in the full-text list (1 = best)")
    similarity: float | None = Field(
        default=None, description="Cosine similarity of the chunk to the query (semantic leg)"
    )
    hits_in_transcription: int | None = Field(
        default=None,
        description="With group_by=transcription: how many candidate chunks of this "
        "transcription matched",
    )
    link: DeepLink


class SearchPage(BaseModel):
    items: list[SearchHit]
    mode: SearchMode
    group_by: Literal["chunk", "transcription"]
    limit: int
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null at the end"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "items": [
                        {
                            "chunk_id": 4211,
                            "transcription_id": "5f0c8a2e-4c1b-4f7e-9a53-0d2f8e7b9c11",
                            "audio_file_id": "9b2c1d4e-7a6f-4e2b-8c3d-1f0e9a8b7c6d",
                            "title": "Weekly planning 2026-11-23",
                            "language": "en",
                            "text": "We agreed to move the delivery to March.",
                            "highlights": [{"start": 25, "end": 33}],
                            "highlight_kind": "words",
                            "snippet": "We agreed to move the <mark>delivery</mark> to March.",
                            "start_time": 754.2,
                            "end_time": 781.9,
                            "speaker": "SPEAKER_01",
                            "score": 0.0328,
                            "retrievers": ["semantic", "text"],
                            "semantic_rank": 1,
                            "text_rank": 2,
                            "similarity": 0.71,
                            "hits_in_transcription": None,
                            "link": {
                                "media_url": "https://verbatim.example/api/v1/audio/"
                                "9b2c1d4e-7a6f-4e2b-8c3d-1f0e9a8b7c6d/content#t=754.2",
                                "start_time": 754.2,
                                "page_url": "https://verbatim.example/recordings/"
                                "9b2c1d4e-7a6f-4e2b-8c3d-1f0e9a8b7c6d?transcription="
                                "5f0c8a2e-4c1b-4f7e-9a53-0d2f8e7b9c11&t=754.2",
                            },
                        }
                    ],
                    "mode": "hybrid",
                    "group_by": "chunk",
                    "limit": 10,
                    "next_cursor": "eyJvIjoxMCwiaCI6IjNmYzE5YTJiIn0",
                }
            ]
        }
    }
