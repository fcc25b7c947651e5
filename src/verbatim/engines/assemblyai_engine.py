"""AssemblyAI over its REST API (v2): upload, submit a transcript, poll it, map the result.

Protocol (https://www.assemblyai.com/docs/api-reference, https://www.assemblyai.com/openapi.yaml):
- every call carries the key in the `Authorization` header (no scheme);
- `POST /v2/upload` takes the raw bytes (application/octet-stream) and answers `{upload_url}`;
- `POST /v2/transcript` with `audio_url` and options answers the transcript object (`id`,
  `status`); `GET /v2/transcript/{id}` until `status` is `completed` or `error`
  (`queued`/`processing` before);
- a completed transcript has `words` (`text`, `start`/`end` in ms, `confidence`, `speaker`),
  `utterances` with `speaker_labels`, `language_code`, `audio_duration` (s), `confidence`;
- `DELETE /v2/transcript/{id}` removes the transcript's data (our cancel).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog

from verbatim.config import Settings
from verbatim.engines.base import EngineError, EngineResult, ModelRef, Segment, Word
from verbatim.engines.cloud import (
    CloudEngine,
    CloudHooks,
    CloudRequest,
    group_words,
    language_code,
    segment_of,
    speaker_stats,
)
from verbatim.engines.http import ProviderClient

log = structlog.get_logger(__name__)
UPLOAD_CHUNK = 1024 * 1024


class AssemblyAIEngine(CloudEngine):
    name = "assemblyai"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = ProviderClient(
            settings,
            "assemblyai",
            settings.assemblyai_base_url,
            {"Authorization": settings.assemblyai_api_key or ""},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def transcribe(
        self, audio_path: Path, request: CloudRequest, hooks: CloudHooks
    ) -> EngineResult:
        started = time.perf_counter()
        transcript_id = request.provider_job_id
        if transcript_id is None:
            await hooks.progress(0.0, "uploading")
            upload_url = await self._upload(audio_path)
            transcript_id = await self._submit(upload_url, request)
            await hooks.submitted(transcript_id)
        answer = await self._wait(transcript_id, hooks)
        result = to_result(answer, request)
        result.raw = answer
        result.provider_job_id = transcript_id
        result.processing_time_s = time.perf_counter() - started
        return result

    async def cancel(self, provider_job_id: str) -> None:
        await self.http.request("DELETE", f"/v2/transcript/{provider_job_id}")
        log.info("engine_job_deleted", provider="assemblyai", provider_job_id=provider_job_id)

    async def _upload(self, path: Path) -> str:
        def body() -> dict[str, Any]:
            async def chunks() -> AsyncIterator[bytes]:
                # Streamed from disk, read in a thread: files may be large.
                fh = await asyncio.to_thread(path.open, "rb")
                try:
                    while chunk := await asyncio.to_thread(fh.read, UPLOAD_CHUNK):
                        yield chunk
                finally:
                    fh.close()

            return {"content": chunks()}

        response = await self.http.request(
            "POST",
            "/v2/upload",
            body=body,
            headers={"Content-Type": "application/octet-stream"},
            call_timeout_s=self.settings.engine_upload_timeout_s,
        )
        url = _json(response).get("upload_url")
        if not isinstance(url, str):
            raise EngineError("engine_bad_response", "AssemblyAI's upload gave no upload_url")
        return url

    async def _submit(self, upload_url: str, request: CloudRequest) -> str:
        options = request.options
        body: dict[str, Any] = {
            "audio_url": upload_url,
            "speech_model": request.model,
            "punctuate": True,
            "format_text": True,
        }
        if options.language:
            body["language_code"] = options.language
        else:
            body["language_detection"] = True
        dialogue = options.dialogue
        if dialogue is not None:
            body["speaker_labels"] = True
            if dialogue.num_speakers is not None:
                body["speakers_expected"] = dialogue.num_speakers
            elif dialogue.min_speakers is not None or dialogue.max_speakers is not None:
                body["speaker_options"] = {
                    k: v
                    for k, v in (
                        ("min_speakers_expected", dialogue.min_speakers),
                        ("max_speakers_expected", dialogue.max_speakers),
                    )
                    if v is not None
                }
        response = await self.http.request("POST", "/v2/transcript", json=body)
        transcript_id = _json(response).get("id")
        if not isinstance(transcript_id, str):
            raise EngineError("engine_bad_response", "AssemblyAI's transcript has no id")
        return transcript_id

    async def _wait(self, transcript_id: str, hooks: CloudHooks) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.engine_max_wait_s
        while True:
            response = await self.http.request("GET", f"/v2/transcript/{transcript_id}")
            answer = _json(response)
            status = answer.get("status")
            if status == "completed":
                return answer
            if status == "error":
                raise EngineError(
                    "engine_failed", f"AssemblyAI could not transcribe: {answer.get('error')}"
                )
            if time.monotonic() > deadline:
                raise EngineError(
                    "engine_timeout",
                    f"AssemblyAI gave no result in {self.settings.engine_max_wait_s:.0f} s",
                    transient=True,
                )
            # Raises JobCancelled when the owner cancelled: the runner then deletes it there.
            await hooks.progress(10.0 if status == "queued" else 50.0, str(status or "waiting"))
            await self.http.sleep(self.settings.engine_poll_interval_s)


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise EngineError("engine_bad_response", "AssemblyAI did not answer JSON") from exc
    if not isinstance(data, dict):
        raise EngineError("engine_bad_response", "AssemblyAI's answer is not an object")
    return data


def _word(w: dict[str, Any]) -> Word:
    return Word(
        start=round(float(w["start"]) / 1000.0, 3),
        end=round(float(w["end"]) / 1000.0, 3),
        word=str(w["text"]),
        probability=round(float(w.get("confidence") or 0.0), 4),
    )


def to_result(answer: dict[str, Any], request: CloudRequest) -> EngineResult:
    """Utterances become segments with speakers SPEAKER_1, SPEAKER_2... (in order of first
    appearance, like the local engine); without them, words are grouped into sentences."""
    segments: list[Segment] = []
    labels: dict[str, str] = {}
    utterances = answer.get("utterances") or []
    if request.options.dialogue is not None and utterances:
        for utterance in utterances:
            words = tuple(_word(w) for w in utterance.get("words") or [])
            raw_label = str(utterance.get("speaker"))
            label = labels.setdefault(raw_label, f"SPEAKER_{len(labels) + 1}")
            if words:
                segment = segment_of(words, label)
            else:
                segment = Segment(
                    start=float(utterance["start"]) / 1000.0,
                    end=float(utterance["end"]) / 1000.0,
                    text=str(utterance.get("text", "")),
                    avg_logprob=0.0,
                    no_speech_prob=0.0,
                    speaker=label,
                )
            segments.append(segment)
    else:
        words_all = [_word(w) for w in answer.get("words") or []]
        segments = [segment_of(run) for run in group_words(words_all)]
    duration = float(answer.get("audio_duration") or (segments[-1].end if segments else 0.0))
    result = EngineResult(
        language=language_code(answer.get("language_code"), request.options.language),
        language_probability=float(answer.get("language_confidence") or 1.0),
        duration=duration,
        model=ModelRef(name=request.model, version="assemblyai"),
        segments=segments,
    )
    if request.options.dialogue is not None:
        result.speakers = speaker_stats(segments)
        result.diarization = {"method": "provider", "provider": "assemblyai"}
        result.diarization["turns"] = len(segments)
    return result
