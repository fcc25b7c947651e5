"""Any OpenAI-compatible `/v1/audio/transcriptions` server (OpenAI, Groq, speaches, vLLM, a
second Verbatim): base URL + key + model.

One multipart POST per file, `response_format=verbose_json` with word and segment timestamps.
A file over the server's upload limit (VERBATIM_OPENAI_MAX_UPLOAD_BYTES, 25 MB at OpenAI) is
split on silence (engines/splitting.py) and the parts' answers stitched with their offsets.
The API is synchronous: there is no provider job to store or cancel; a retried job sends the
audio again.

Whisper's verbose_json gives no per-word confidence: a word gets its segment's
exp(avg_logprob), the closest figure the server reports.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from verbatim.config import Settings
from verbatim.engines.base import EngineError, EngineResult, ModelRef, Segment, Word
from verbatim.engines.cloud import CloudEngine, CloudHooks, CloudRequest, language_code
from verbatim.engines.http import ProviderClient
from verbatim.engines.splitting import Part, split_on_silence


class OpenAIEngine(CloudEngine):
    name = "openai"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.openai_api_key}"}
        if not settings.openai_api_key:
            headers = {}
        self.http = ProviderClient(settings, "openai", settings.openai_base_url, headers)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def transcribe(
        self, audio_path: Path, request: CloudRequest, hooks: CloudHooks
    ) -> EngineResult:
        started = time.perf_counter()
        limit = self.settings.openai_max_upload_bytes
        with tempfile.TemporaryDirectory(prefix="verbatim-openai-") as tmp:
            size = (await asyncio.to_thread(audio_path.stat)).st_size
            if size <= limit:
                parts = [Part(path=audio_path, offset=0.0, duration=0.0)]
            else:
                await hooks.progress(0.0, "splitting")
                parts = await asyncio.to_thread(split_on_silence, audio_path, limit, Path(tmp))
            answers: list[tuple[float, dict[str, Any]]] = []
            for index, part in enumerate(parts):
                answers.append((part.offset, await self._post(part.path, request)))
                await hooks.progress(100.0 * (index + 1) / len(parts), "transcribing")
        result = stitch(answers, request, [p.duration for p in parts])
        result.processing_time_s = time.perf_counter() - started
        if len(parts) > 1:
            result.raw = {"parts": [{"offset": o, "response": a} for o, a in answers]}
        else:
            result.raw = answers[0][1]
        return result

    async def _post(self, path: Path, request: CloudRequest) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": request.model,
            "response_format": "verbose_json",
            # Repeated field, as OpenAI's SDK sends it.
            "timestamp_granularities[]": ["word", "segment"],
            "temperature": "0",
        }
        if request.options.language:
            data["language"] = request.options.language

        def body() -> dict[str, Any]:
            # Read per try: a retried request sends the whole file again.
            return {"files": {"file": (path.name, path.read_bytes(), "application/octet-stream")}}

        response = await self.http.request(
            "POST",
            "/audio/transcriptions",
            data=data,
            body=body,
            call_timeout_s=self.settings.engine_upload_timeout_s,
        )
        try:
            answer = response.json()
        except ValueError as exc:
            raise EngineError("engine_bad_response", "the server did not answer JSON") from exc
        if not isinstance(answer, dict) or "text" not in answer:
            raise EngineError("engine_bad_response", "the answer is not a transcription")
        return answer


def stitch(
    answers: list[tuple[float, dict[str, Any]]], request: CloudRequest, durations: list[float]
) -> EngineResult:
    """verbose_json answers (one per part) into one result; times shifted by each offset."""
    segments: list[Segment] = []
    duration = 0.0
    language: str | None = None
    for (offset, answer), part_duration in zip(answers, durations, strict=True):
        language = language or answer.get("language")
        part_length = float(answer.get("duration") or part_duration or 0.0)
        duration = max(duration, offset + part_length)
        words = [
            (float(w["start"]) + offset, float(w["end"]) + offset, str(w["word"]))
            for w in answer.get("words") or []
        ]
        raw_segments = answer.get("segments") or []
        if not raw_segments and answer.get("text"):
            raw_segments = [{"start": 0.0, "end": part_length, "text": answer["text"]}]
        for seg in raw_segments:
            start, end = float(seg["start"]) + offset, float(seg["end"]) + offset
            avg_logprob = float(seg.get("avg_logprob", 0.0))
            confidence = round(min(1.0, math.exp(avg_logprob)), 4)
            mine = [w for w in words if start <= (w[0] + w[1]) / 2 < end]
            segments.append(
                Segment(
                    start=round(start, 3),
                    end=round(end, 3),
                    text=str(seg.get("text", "")).strip(),
                    avg_logprob=avg_logprob,
                    no_speech_prob=float(seg.get("no_speech_prob", 0.0)),
                    words=tuple(
                        Word(round(s, 3), round(e, 3), text, confidence) for s, e, text in mine
                    ),
                )
            )
    return EngineResult(
        language=language_code(language, request.options.language),
        language_probability=1.0 if request.options.language else 0.0,
        duration=round(duration, 3),
        model=ModelRef(name=request.model),
        segments=segments,
    )
