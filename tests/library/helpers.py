"""Rows for library tests: transcriptions written straight to the real database (for tests about
ordering, ownership and cascades, where running the speech model adds only time)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import func, select

from tests.conftest import ApiUser
from verbatim.models import AudioFile, Segment, SourceType, Transcription, TranscriptionStatus, User
from verbatim.services import get_services


async def user_row(user: ApiUser) -> User:
    async with get_services().sessionmaker() as session:
        row = await session.scalar(select(User).where(User.email == user.email))
        assert row is not None
        return row


async def make_transcription(
    user: ApiUser,
    title: str,
    *,
    duration: float = 60.0,
    status: TranscriptionStatus = TranscriptionStatus.completed,
    segments: list[tuple[float, float, str]] | None = None,
) -> str:
    """An audio row and its transcription (with segments) for `user`; returns the id."""
    owner = await user_row(user)
    segments = segments or [(0.0, duration, f"This is {title}.")]
    async with get_services().sessionmaker() as session, session.begin():
        digest = hashlib.sha256(f"{title}-{uuid.uuid4()}".encode()).hexdigest()
        audio = AudioFile(
            user_id=owner.id,
            tenant_id=owner.tenant_id,
            storage_key=f"uploads/test/{digest[:16]}",
            original_filename=f"{title}.wav",
            title=title,
            size_bytes=1000,
            sha256=digest,
            mime_type="audio/wav",
            container="wav",
            codec="pcm_s16le",
            duration=duration,
            source_type=SourceType.upload,
        )
        session.add(audio)
        await session.flush()
        transcription = Transcription(
            user_id=owner.id,
            tenant_id=owner.tenant_id,
            audio_file_id=audio.id,
            status=status,
            language="en" if status is TranscriptionStatus.completed else None,
            engine="faster-whisper",
            model_name="tiny.en",
            duration=duration,
            text=" ".join(text for _, _, text in segments),
        )
        session.add(transcription)
        await session.flush()
        session.add_all(
            Segment(transcription_id=transcription.id, index=i, start=start, end=end, text=text)
            for i, (start, end, text) in enumerate(segments)
        )
        return str(transcription.id)


async def count(model: Any, *where: Any) -> int:
    async with get_services().sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def add_chunks(
    user: ApiUser,
    transcription_id: str,
    chunks: list[tuple[float, float, str]],
    *,
    model: str | None = None,
) -> str:
    """Chunks with real embeddings (the search embedder), as search.index stores them. With
    `model`, the rows claim to come from another model (their vectors are still real)."""
    import asyncio

    from verbatim.models import TranscriptionChunk
    from verbatim.search.embedding import embed_passages

    owner = await user_row(user)
    settings = get_services().settings
    name, vectors = await asyncio.to_thread(embed_passages, [c[2] for c in chunks], settings)
    async with get_services().sessionmaker() as session, session.begin():
        pos = 0
        for i, ((start, end, text), vector) in enumerate(zip(chunks, vectors, strict=True)):
            session.add(
                TranscriptionChunk(
                    user_id=owner.id,
                    tenant_id=owner.tenant_id,
                    transcription_id=uuid.UUID(transcription_id),
                    chunk_index=i,
                    text=text,
                    start_time=start,
                    end_time=end,
                    start_char_pos=pos,
                    end_char_pos=pos + len(text),
                    embedding=vector,
                    embedding_model=model or name,
                )
            )
            pos += len(text) + 1
    return name
