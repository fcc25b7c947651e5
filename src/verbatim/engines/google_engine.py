"""Google Cloud Speech-to-Text v1 over REST: `speech:longrunningrecognize` with the audio inline,
then `operations.get` until done.

Protocol (https://cloud.google.com/speech-to-text/docs/reference/rest/v1/speech/longrunningrecognize,
https://cloud.google.com/speech-to-text/docs/reference/rest/v1/operations/get,
https://cloud.google.com/speech-to-text/docs/reference/rest/v1/RecognitionConfig):
- the API key goes in the `X-goog-api-key` header;
- the audio is sent inline (base64 `audio.content`, at most 10 MB per request), so it is
  decoded to 16 kHz mono LINEAR16 and, past VERBATIM_GOOGLE_MAX_INLINE_BYTES, cut on silence
  into parts, one operation each (v2 takes no longer inline audio either);
- word offsets (`enableWordTimeOffsets`) and confidence (`enableWordConfidence`) are asked for;
  dialogue mode adds `diarizationConfig`, whose answer is the last result: every word again,
  with a `speakerTag`;
- v1 has no cancel for these operations: a cancelled job stops polling and the operation ends
  on its own at Google.

The provider job id stored is every part's `offset:duration@operation`, comma-separated, so a
restarted worker polls the same operations.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

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
    submit_or_resume,
)
from verbatim.engines.http import ProviderClient
from verbatim.engines.splitting import SAMPLE_RATE


class GoogleEngine(CloudEngine):
    name = "google"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = ProviderClient(
            settings,
            "google",
            settings.google_base_url,
            {"X-goog-api-key": settings.google_api_key or ""},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def transcribe(
        self, audio_path: Path, request: CloudRequest, hooks: CloudHooks
    ) -> EngineResult:
        started = time.perf_counter()
        config = self._config(request)

        async def submit(part: Path) -> str:
            return await self._submit(part, config)

        operations = await submit_or_resume(
            audio_path,
            request,
            hooks,
            max_bytes=self.settings.google_max_inline_bytes,
            submit=submit,
        )
        answers = []
        for index, (offset, duration, name) in enumerate(operations):
            answer = await self._wait(name, hooks, index, len(operations))
            answers.append((offset, duration, answer))
        result = to_result(answers, request)
        result.raw = {
            "operations": [{"offset": o, "duration": d, "operation": a} for o, d, a in answers]
        }
        result.processing_time_s = time.perf_counter() - started
        return result

    def _config(self, request: CloudRequest) -> dict[str, Any]:
        config: dict[str, Any] = {
            "encoding": "LINEAR16",
            "sampleRateHertz": SAMPLE_RATE,
            "audioChannelCount": 1,
            "languageCode": request.options.language or self.settings.google_language_code,
            "model": request.model,
            "enableWordTimeOffsets": True,
            "enableWordConfidence": True,
            "enableAutomaticPunctuation": True,
        }
        dialogue = request.options.dialogue
        if dialogue is not None:
            low = dialogue.num_speakers or dialogue.min_speakers or 2
            high = dialogue.num_speakers or dialogue.max_speakers or max(low, 6)
            config["diarizationConfig"] = {
                "enableSpeakerDiarization": True,
                "minSpeakerCount": low,
                "maxSpeakerCount": high,
            }
        return config

    async def _submit(self, part: Path, config: dict[str, Any]) -> str:
        content = base64.b64encode(await asyncio.to_thread(part.read_bytes))
        body = {"config": config, "audio": {"content": content.decode()}}
        response = await self.http.request(
            "POST",
            "/v1/speech:longrunningrecognize",
            json=body,
            call_timeout_s=self.settings.engine_upload_timeout_s,
        )
        name = _json(response).get("name")
        if not isinstance(name, str) or not name:
            raise EngineError("engine_bad_response", "Google gave no operation name")
        return name

    async def _wait(self, name: str, hooks: CloudHooks, index: int, count: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.engine_max_wait_s
        while True:
            operation = _json(await self.http.request("GET", f"/v1/operations/{name}"))
            if operation.get("done"):
                if "error" in operation:
                    error = operation["error"] or {}
                    raise EngineError(
                        "engine_failed", f"Google could not transcribe: {error.get('message')}"
                    )
                return operation
            if time.monotonic() > deadline:
                raise EngineError("engine_timeout", "Google gave no result in time", transient=True)
            progress = float((operation.get("metadata") or {}).get("progressPercent") or 0)
            await hooks.progress((100.0 * index + progress) / count, "processing")
            await self.http.sleep(self.settings.engine_poll_interval_s)


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise EngineError("engine_bad_response", "Google did not answer JSON") from exc
    if not isinstance(data, dict):
        raise EngineError("engine_bad_response", "Google's answer is not an object")
    return data


def _seconds(value: Any) -> float:
    """Durations are JSON strings like "1.300s" (google.protobuf.Duration)."""
    if value is None:
        return 0.0
    return float(str(value).rstrip("s") or 0.0)


def _words(alternative: dict[str, Any], offset: float) -> list[tuple[Word, int | None]]:
    return [
        (
            Word(
                start=round(_seconds(w.get("startTime")) + offset, 3),
                end=round(_seconds(w.get("endTime")) + offset, 3),
                word=str(w.get("word", "")),
                probability=round(float(w.get("confidence") or 0.0), 4),
            ),
            w.get("speakerTag"),
        )
        for w in alternative.get("words") or []
    ]


def to_result(
    answers: list[tuple[float, float, dict[str, Any]]], request: CloudRequest
) -> EngineResult:
    dialogue = request.options.dialogue is not None
    segments: list[Segment] = []
    language: str | None = None
    duration = 0.0
    labels: dict[int, str] = {}
    for offset, part_duration, operation in answers:
        duration = max(duration, offset + part_duration)
        results = (operation.get("response") or {}).get("results") or []
        language = language or next((r.get("languageCode") for r in results), None)
        alternatives = [(r.get("alternatives") or [{}])[0] for r in results]
        if dialogue and alternatives:
            # The last result holds every word of the part with its speakerTag.
            tagged = _words(alternatives[-1], offset)
            run: list[Word] = []
            run_tag: int | None = None
            for word, tag in [*tagged, (None, None)]:
                if word is None or (run and tag != run_tag):
                    label = labels.setdefault(run_tag or 0, f"SPEAKER_{len(labels) + 1}")
                    segments += [segment_of(chunk, label) for chunk in group_words(run)]
                    run = []
                if word is not None:
                    run.append(word)
                    run_tag = tag
        else:
            for alternative in alternatives:
                words = tuple(w for w, _ in _words(alternative, offset))
                if words:
                    segments.append(segment_of(words))
    result = EngineResult(
        language=language_code(language, request.options.language),
        language_probability=1.0,
        duration=round(duration, 3),
        model=ModelRef(name=request.model, version="google"),
        segments=segments,
    )
    if dialogue:
        result.speakers = speaker_stats(segments)
        result.diarization = {"method": "provider", "provider": "google"}
        result.diarization["turns"] = len(segments)
    return result
