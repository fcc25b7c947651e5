"""Search test data: recordings with chunks embedded by the real model.

A recording is a real upload (a fixture file through POST /api/v1/audio); its transcription row
is written completed with the given chunks, the way the indexer leaves it: text, times, speaker,
the embedding of the real model, the language's text search configuration.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from tests.conftest import FIXTURES, ApiUser
from verbatim.search import embedding
from verbatim.search.service import LANGUAGE_CONFIGS
from verbatim.services import get_services


@dataclass
class Chunk:
    text: str
    start: float
    end: float
    speaker: str | None = None


@dataclass
class Recording:
    audio_file_id: uuid.UUID
    transcription_id: uuid.UUID
    chunk_ids: list[int] = field(default_factory=list)


async def user_id(user: ApiUser) -> uuid.UUID:
    r = await user.get("/api/v1/auth/me")
    assert r.status_code == 200, r.text
    return uuid.UUID(r.json()["id"])


async def add_recording(
    user: ApiUser,
    chunks: list[Chunk],
    *,
    language: str | None = "en",
    fixture: str = "speech.wav",
    filename: str | None = None,
    title: str | None = None,
) -> Recording:
    """Upload a fixture (a distinct file name and bytes each time) and index `chunks` as its
    completed transcription."""
    # The same bytes twice would be one audio file (dedup); a suffix of silence-free junk
    # after the RIFF data keeps the audio decodable and the checksum distinct.
    data = (FIXTURES / fixture).read_bytes() + uuid.uuid4().bytes
    r = await user.post(
        "/api/v1/audio",
        files={"file": (filename or f"{uuid.uuid4().hex[:8]}.wav", data, "audio/wav")},
    )
    assert r.status_code == 201, r.text
    audio_id = uuid.UUID(r.json()["id"])
    owner = await user_id(user)
    model, vectors = await asyncio.to_thread(embedding.embed_passages, [c.text for c in chunks])
    config = LANGUAGE_CONFIGS.get(language, "simple")
    transcription_id = uuid.uuid4()
    full_text = " ".join(c.text for c in chunks)
    async with get_services().sessionmaker() as session:
        tenant = await session.scalar(
            text('SELECT tenant_id FROM "user" WHERE id = :id'), {"id": owner}
        )
        if title is not None:
            await session.execute(
                text("UPDATE audio_file SET title = :title WHERE id = :id"),
                {"title": title, "id": audio_id},
            )
        await session.execute(
            text(
                "INSERT INTO transcription (id, audio_file_id, user_id, tenant_id, status, mode,"
                " engine, model_name, options, language, text, duration, created_at,"
                " completed_at) VALUES (:id, :audio, :user, :tenant, 'completed', 'mono',"
                " 'faster-whisper', 'tiny.en', '{}', :language, :text, :duration, now(), now())"
            ),
            {
                "id": transcription_id,
                "audio": audio_id,
                "user": owner,
                "tenant": tenant,
                "language": language,
                "text": full_text,
                "duration": max(c.end for c in chunks),
            },
        )
        ids: list[int] = []
        pos = 0
        for index, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
            chunk_id = await session.scalar(
                text(
                    "INSERT INTO transcription_chunk (transcription_id, chunk_index, text,"
                    " start_time, end_time, start_char_pos, end_char_pos, speaker, embedding,"
                    " embedding_model, ts_config, user_id, tenant_id) VALUES (:t, :i, :text,"
                    " :start, :end, :cs, :ce, :speaker, CAST(:vec AS vector), :model,"
                    " CAST(:cfg AS regconfig), :user, :tenant) RETURNING id"
                ),
                {
                    "t": transcription_id,
                    "i": index,
                    "text": chunk.text,
                    "start": chunk.start,
                    "end": chunk.end,
                    "cs": pos,
                    "ce": pos + len(chunk.text),
                    "speaker": chunk.speaker,
                    "vec": "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]",
                    "model": model,
                    "cfg": config,
                    "user": owner,
                    "tenant": tenant,
                },
            )
            assert chunk_id is not None
            ids.append(int(chunk_id))
            pos += len(chunk.text) + 1
        await session.commit()
    return Recording(audio_id, transcription_id, ids)


async def search(user: ApiUser, q: str, **params: Any) -> dict[str, Any]:
    r = await user.get("/api/v1/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
