"""Search quality on a real transcript: paraphrases find their passage, words land on their second.

The recording is bench/data/speech_10min.ogg (621 s: twelve topical paragraphs read twice by
espeak-ng); its transcript is what the service's tiny.en produced for it
(tests/fixtures/speech_10min.transcript.json, with its recognition errors). It is written as
the transcription job writes a result, indexed by the real `search.index` job (chunking and the
real embedding model), then searched through the API.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ApiUser, wait_for_job
from verbatim.engines.base import EngineResult, ModelRef, Segment, Word
from verbatim.models import Transcription
from verbatim.search.service import queue_index
from verbatim.services import get_services
from verbatim.transcriptions.runner import segment_rows, write_result

RECORDING = Path(__file__).parents[2] / "bench" / "data" / "speech_10min.ogg"
TRANSCRIPT = json.loads((FIXTURES / "speech_10min.transcript.json").read_text())

# A paraphrase (few or none of the passage's words) and a word of the passage it must land on.
PARAPHRASES = [
    ("how do I cook a soup from tomatoes, onion and garlic", "tomato"),
    ("an ancient collection of scrolls in Egypt that was lost", "Alexandria"),
    ("a championship decided by a goal in the final minutes", "stadium"),
    ("practising scales on a keyboard instrument", "piano"),
    ("looking at the moon and planets through binoculars", "binoculars"),
    ("getting enough rest at night to stay well", "healthy"),
    ("an overnight rail journey to a lake in the mountains", "train"),
    ("tiny electronic switches inside a computer", "transistors"),
]


def _word_times(word: str) -> list[float]:
    """When the transcript says `word` (case and punctuation aside)."""
    times = []
    for segment in TRANSCRIPT["segments"]:
        for w in segment["words"]:
            if w["word"].strip(" .,;:!?'\"").lower() == word.lower():
                times.append(float(w["start"]))
    assert times, f"{word!r} is not in the fixture transcript"
    return times


async def _index_transcript(user: ApiUser) -> tuple[str, str]:
    """Upload the recording, write its transcript as the transcription job does, and run the
    real index job. Returns (audio file id, transcription id)."""
    with RECORDING.open("rb") as fh:
        r = await user.post("/api/v1/audio", files={"file": ("ten.ogg", fh, "audio/ogg")})
    assert r.status_code == 201, r.text
    audio_id = uuid.UUID(r.json()["id"])
    result = EngineResult(
        language=TRANSCRIPT["language"],
        language_probability=1.0,
        duration=TRANSCRIPT["duration"],
        model=ModelRef(name=TRANSCRIPT["model"], path=Path(TRANSCRIPT["model"])),
        segments=[
            Segment(
                start=s["start"],
                end=s["end"],
                text=s["text"],
                avg_logprob=-0.2,
                no_speech_prob=0.0,
                words=tuple(Word(**w) for w in s["words"]),
            )
            for s in TRANSCRIPT["segments"]
        ],
    )
    async with get_services().sessionmaker() as session:
        from sqlalchemy import select

        from verbatim.models import AudioFile

        audio = await session.scalar(select(AudioFile).where(AudioFile.id == audio_id))
        assert audio is not None
        transcription = Transcription(
            audio_file_id=audio.id,
            user_id=audio.user_id,
            tenant_id=audio.tenant_id,
            engine="faster-whisper",
            model_name=TRANSCRIPT["model"],
        )
        session.add(transcription)
        await session.flush()
        write_result(session, transcription, result)
        session.add_all(segment_rows(transcription.id, result))
        await session.flush()
        job = await queue_index(session, transcription)
        await session.commit()
        job_id, transcription_id = str(job.id), str(transcription.id)
    done = await wait_for_job(user, job_id, timeout=300)
    assert done["status"] == "completed", done
    return str(audio_id), transcription_id


async def _search(user: ApiUser, q: str, **params: Any) -> list[dict[str, Any]]:
    r = await user.get("/api/v1/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.mark.slow
async def test_paraphrases_and_words_land_on_the_right_second(alice: ApiUser) -> None:
    audio_id, transcription_id = await _index_transcript(alice)

    # Meaning: the passage comes first (semantic), and in the top three fused with words.
    misses = []
    for query, word in PARAPHRASES:
        times = _word_times(word)
        for mode, depth in (("semantic", 1), ("hybrid", 3)):
            hits = await _search(alice, query, mode=mode, limit=depth)
            if not any(h["start_time"] <= t <= h["end_time"] for h in hits[:depth] for t in times):
                misses.append((mode, query, [(h["start_time"], h["end_time"]) for h in hits]))
    assert not misses, misses

    # Words: the deep link starts at the word itself (word timestamps), whichever occurrence.
    for query, word in (("binoculars", "binoculars"), ('"night train"', "night")):
        times = _word_times(word)
        hits = await _search(alice, query, mode="text")
        assert hits, query
        for hit in hits:
            assert hit["transcription_id"] == transcription_id
            assert hit["highlight_kind"] == "words"
            link = hit["link"]
            assert min(abs(link["start_time"] - t) for t in times) < 0.5, (query, link)
            assert link["media_url"].endswith(
                f"/api/v1/audio/{audio_id}/content#t={link['start_time']:g}"
            )
        # Both readings of the paragraph are found.
        assert len(hits) >= 2, hits
    # A word the recording never says.
    assert await _search(alice, "zeppelin", mode="text") == []
