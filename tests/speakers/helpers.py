"""A completed dialogue transcription written as the worker leaves it, without a model."""

from __future__ import annotations

import uuid

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.models import Segment, Speaker, Transcription, TranscriptionStatus


def unit(seed: int) -> list[float]:
    """A unit voice embedding (192-d, as the speaker model gives)."""
    v = np.random.default_rng(seed).standard_normal(192)
    return (v / np.linalg.norm(v)).tolist()


async def add_dialogue(
    session: AsyncSession,
    transcription_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    audio_file_id: uuid.UUID,
    first_speaker_name: str | None = None,
) -> None:
    """Three segments by SPEAKER_1 and SPEAKER_2, with their speaker rows (not committed)."""
    session.add(
        Transcription(
            id=transcription_id,
            user_id=user_id,
            tenant_id=tenant_id,
            audio_file_id=audio_file_id,
            status=TranscriptionStatus.completed,
            mode="dialogue",
            language="en",
            engine="faster-whisper",
            model_name="tiny.en",
            options={"diarization": "auto"},
            text="Hello there. Hi. How are you?",
            duration=4.0,
        )
    )
    await session.flush()
    for i, (speaker, text) in enumerate(
        [("SPEAKER_1", "Hello there."), ("SPEAKER_2", "Hi."), ("SPEAKER_1", "How are you?")]
    ):
        session.add(
            Segment(
                transcription_id=transcription_id,
                index=i,
                start=i * 1.5,
                end=i * 1.5 + 1.0,
                text=text,
                speaker=speaker,
                words=[],
            )
        )
    session.add_all(
        [
            Speaker(
                transcription_id=transcription_id,
                label="SPEAKER_1",
                display_name=first_speaker_name,
                talk_time=2.0,
                word_count=5,
                centroid=unit(1),
            ),
            Speaker(
                transcription_id=transcription_id,
                label="SPEAKER_2",
                talk_time=1.0,
                word_count=1,
                centroid=unit(2),
            ),
        ]
    )
