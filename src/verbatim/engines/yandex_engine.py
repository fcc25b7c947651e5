"""Yandex SpeechKit asynchronous recognition over REST (API v3), without the deprecated SDK.

Protocol (https://yandex.cloud/en/docs/speechkit/stt-v3/api-ref/AsyncRecognizer/recognizeFile,
https://yandex.cloud/en/docs/speechkit/stt-v3/api-ref/AsyncRecognizer/getRecognition,
https://yandex.cloud/en/docs/speechkit/stt/api/transcribation-api for the operation service,
https://yandex.cloud/en/docs/speechkit/stt/speaker-labeling for speakers):
- `Authorization: Api-Key <key>` on every call;
- `POST {base}/stt/v3/recognizeFileAsync` with the audio inline (`content`, base64 WAV) and
  `recognitionModel` (`model`, `audioFormat.containerAudio`, `languageRestriction`,
  `audioProcessingType: FULL_DATA`: the whole file is there, and speaker labelling is only
  available in that mode), plus `speakerLabeling` in dialogue mode; answers an Operation
  (`id`, `done`);
- `GET {operations}/operations/{id}` until `done` (with `error` on failure);
- `GET {base}/stt/v3/getRecognition?operationId=` streams JSON objects, one per line, each
  `{"result": StreamingResponse}`; `final` ones carry `alternatives[0]` (`text`, `words[{text,
  startTimeMs, endTimeMs}]`, `confidence`, `languages`); other events (`statusCode`,
  `finalRefinement` with the normalised text of a final already read, ...) are skipped;
- speakers: with labelling on, each response's own `channelTag` ("0" or "1", at most two
  speakers, one value per speaker; `StreamingResponse.channel_tag` in the v3 proto, read as
  `r.channel_tag` in the speaker-labelling page's example). `final.channelTag` is the
  deprecated place and is read only when the response has none;
- `DELETE {base}/stt/v3/deleteRecognition?operationId=` removes the results (our cancel).
Words carry no confidence in v3: a word gets its phrase's `confidence`.
Audio past VERBATIM_YANDEX_MAX_INLINE_BYTES goes as several operations, cut on silence.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from verbatim.config import Settings
from verbatim.engines.base import EngineError, EngineResult, ModelRef, Segment, Word
from verbatim.engines.cloud import (
    CloudEngine,
    CloudHooks,
    CloudRequest,
    language_code,
    parse_job_id,
    segment_of,
    speaker_stats,
    submit_or_resume,
)
from verbatim.engines.http import ProviderClient

LANGUAGES = {"ru": "ru-RU", "en": "en-US", "de": "de-DE", "fr": "fr-FR", "kk": "kk-KZ"}


class YandexEngine(CloudEngine):
    name = "yandex"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        headers = {"Authorization": f"Api-Key {settings.yandex_api_key}"}
        self.http = ProviderClient(settings, "yandex", settings.yandex_base_url, headers)
        self.operations = ProviderClient(settings, "yandex", settings.yandex_operation_url, headers)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.operations.aclose()

    async def transcribe(
        self, audio_path: Path, request: CloudRequest, hooks: CloudHooks
    ) -> EngineResult:
        started = time.perf_counter()

        async def submit(part: Path) -> str:
            return await self._submit(part, request)

        jobs = await submit_or_resume(
            audio_path,
            request,
            hooks,
            max_bytes=self.settings.yandex_max_inline_bytes,
            submit=submit,
        )
        answers = []
        for index, (offset, duration, operation_id) in enumerate(jobs):
            await self._wait(operation_id, hooks, index, len(jobs))
            answers.append((offset, duration, await self._results(operation_id)))
        result = to_result(answers, request)
        result.raw = {
            "operations": [{"offset": o, "duration": d, "results": r} for o, d, r in answers]
        }
        result.processing_time_s = time.perf_counter() - started
        return result

    async def cancel(self, provider_job_id: str) -> None:
        for _, _, operation_id in parse_job_id(provider_job_id):
            await self.http.request(
                "DELETE", "/stt/v3/deleteRecognition", params={"operationId": operation_id}
            )

    def _body(self, content: bytes, request: CloudRequest) -> dict[str, Any]:
        language = request.options.language
        body: dict[str, Any] = {
            "content": base64.b64encode(content).decode(),
            "recognitionModel": {
                "model": request.model,
                "audioFormat": {"containerAudio": {"containerAudioType": "WAV"}},
                "textNormalization": {"textNormalization": "TEXT_NORMALIZATION_ENABLED"},
                "languageRestriction": {
                    "restrictionType": "WHITELIST",
                    "languageCode": [LANGUAGES.get(language, language)] if language else ["auto"],
                },
                "audioProcessingType": "FULL_DATA",
            },
        }
        if request.options.dialogue is not None:
            body["speakerLabeling"] = {"speakerLabeling": "SPEAKER_LABELING_ENABLED"}
        return body

    async def _submit(self, part: Path, request: CloudRequest) -> str:
        content = await asyncio.to_thread(part.read_bytes)
        response = await self.http.request(
            "POST",
            "/stt/v3/recognizeFileAsync",
            json=self._body(content, request),
            call_timeout_s=self.settings.engine_upload_timeout_s,
        )
        operation_id = _json(response).get("id")
        if not isinstance(operation_id, str) or not operation_id:
            raise EngineError("engine_bad_response", "Yandex gave no operation id")
        return operation_id

    async def _wait(self, operation_id: str, hooks: CloudHooks, index: int, count: int) -> None:
        deadline = time.monotonic() + self.settings.engine_max_wait_s
        while True:
            response = await self.operations.request("GET", f"/operations/{operation_id}")
            operation = _json(response)
            if operation.get("done"):
                if operation.get("error"):
                    message = (operation["error"] or {}).get("message")
                    raise EngineError("engine_failed", f"Yandex could not transcribe: {message}")
                return
            if time.monotonic() > deadline:
                raise EngineError("engine_timeout", "Yandex gave no result in time", transient=True)
            await hooks.progress(100.0 * (index + 0.5) / count, "processing")
            await self.http.sleep(self.settings.engine_poll_interval_s)

    async def _results(self, operation_id: str) -> list[dict[str, Any]]:
        response = await self.http.request(
            "GET", "/stt/v3/getRecognition", params={"operationId": operation_id}
        )
        results = []
        for line in response.text.splitlines():
            if line.strip():
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    raise EngineError("engine_bad_response", "Yandex sent a broken line") from exc
                results.append(item.get("result", item))
        return results


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise EngineError("engine_bad_response", "Yandex did not answer JSON") from exc
    if not isinstance(data, dict):
        raise EngineError("engine_bad_response", "Yandex's answer is not an object")
    return data


def to_result(
    answers: list[tuple[float, float, list[dict[str, Any]]]], request: CloudRequest
) -> EngineResult:
    dialogue = request.options.dialogue is not None
    segments: list[Segment] = []
    labels: dict[str, str] = {}
    language: str | None = None
    duration = 0.0
    for offset, part_duration, results in answers:
        duration = max(duration, offset + part_duration)
        for item in results:
            final = item.get("final")
            if not final or not final.get("alternatives"):
                continue
            alternative = final["alternatives"][0]
            confidence = float(alternative.get("confidence") or 0.0)
            languages = alternative.get("languages") or []
            if languages and not language:
                language = languages[0].get("languageCode")
            words = tuple(
                Word(
                    start=round(int(w["startTimeMs"]) / 1000 + offset, 3),
                    end=round(int(w["endTimeMs"]) / 1000 + offset, 3),
                    word=str(w["text"]),
                    probability=round(confidence, 4),
                )
                for w in alternative.get("words") or []
            )
            if not words:
                continue
            speaker = None
            if dialogue:
                tag = str(item.get("channelTag") or final.get("channelTag") or "0")
                speaker = labels.setdefault(tag, f"SPEAKER_{len(labels) + 1}")
            segments.append(segment_of(words, speaker))
    result = EngineResult(
        language=language_code(language, request.options.language),
        language_probability=1.0,
        duration=round(duration, 3),
        model=ModelRef(name=request.model, version="yandex"),
        segments=segments,
    )
    if dialogue:
        result.speakers = speaker_stats(segments)
        result.diarization = {"method": "provider", "provider": "yandex"}
        result.diarization["turns"] = len(segments)
    return result
