"""The form fields of /v1/audio/transcriptions and /v1/audio/translations, checked.

The body is multipart/form-data, as OpenAI's API takes it: `file` plus text fields. The SDKs
send `timestamp_granularities[]` once per value and booleans and numbers as strings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from verbatim.openai_api.errors import OpenAIError

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
FORMATS: tuple[ResponseFormat, ...] = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
MAX_PROMPT_CHARS = 2000
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
# The header that overrides the per-user default for one request.
STORE_HEADER = "x-verbatim-store"


@dataclass(frozen=True)
class AudioRequest:
    task: Literal["transcribe", "translate"]
    model: str
    language: str | None
    prompt: str | None
    temperature: float | None  # None or 0: the engine's fallback schedule, as OpenAI does
    response_format: ResponseFormat
    granularities: frozenset[str]
    stream: bool
    store: bool | None  # None: the user's default


def _one(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise OpenAIError(
            f"'{name}' was given {len(values)} times", code="invalid_value", param=name
        )
    return values[0]


def parse_bool(value: str | None, param: str) -> bool | None:
    if value is None or value.strip() == "":
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise OpenAIError(f"'{param}' must be true or false", code="invalid_value", param=param)


def parse_form(
    fields: dict[str, list[str]], task: Literal["transcribe", "translate"], store_header: str | None
) -> AudioRequest:
    for value in (v for values in fields.values() for v in values):
        if "\x00" in value:
            raise OpenAIError("Fields cannot contain NUL characters", code="invalid_value")
    model = (_one(fields, "model") or "").strip()
    if not model:
        raise OpenAIError("you must provide a model parameter", code="missing_model", param="model")
    language = _one(fields, "language") if task == "transcribe" else None
    if language is not None:
        language = language.strip().lower() or None
        if language is not None and not _LANGUAGE.match(language):
            raise OpenAIError(
                f"Invalid language {language!r}: use an ISO-639-1 code such as 'en'",
                code="invalid_language",
                param="language",
            )
    prompt = _one(fields, "prompt")
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise OpenAIError(
            f"The prompt is longer than {MAX_PROMPT_CHARS} characters",
            code="invalid_value",
            param="prompt",
        )
    temperature: float | None = None
    raw_temperature = _one(fields, "temperature")
    if raw_temperature is not None and raw_temperature.strip():
        try:
            temperature = float(raw_temperature)
        except ValueError:
            temperature = math.nan
        if not 0.0 <= temperature <= 1.0:  # NaN fails too
            raise OpenAIError(
                "temperature must be a number between 0 and 1",
                code="invalid_value",
                param="temperature",
            )
    response_format = (_one(fields, "response_format") or "json").strip()
    if response_format not in FORMATS:
        raise OpenAIError(
            f"Invalid response_format {response_format!r}: use one of {', '.join(FORMATS)}",
            code="invalid_value",
            param="response_format",
        )
    granularities = fields.get("timestamp_granularities[]", []) + fields.get(
        "timestamp_granularities", []
    )
    for value in granularities:
        if value not in GRANULARITIES:
            raise OpenAIError(
                f"Invalid timestamp granularity {value!r}: use word or segment",
                code="invalid_value",
                param="timestamp_granularities",
            )
    if granularities and response_format != "verbose_json":
        raise OpenAIError(
            "timestamp_granularities needs response_format 'verbose_json'",
            code="invalid_value",
            param="timestamp_granularities",
        )
    stream = bool(parse_bool(_one(fields, "stream"), "stream"))
    if stream and response_format not in ("json", "text"):
        raise OpenAIError(
            "A streamed answer carries text: use response_format json or text with stream",
            code="unsupported_value",
            param="response_format",
        )
    store = parse_bool(_one(fields, "store"), "store")
    if store_header is not None:
        from_header = parse_bool(store_header, STORE_HEADER)
        if store is not None and from_header is not None and store != from_header:
            raise OpenAIError(
                f"The '{STORE_HEADER}' header and the 'store' field disagree",
                code="invalid_value",
                param="store",
            )
        store = from_header if from_header is not None else store
    return AudioRequest(
        task=task,
        model=model,
        language=language,
        prompt=prompt or None,
        temperature=temperature or None,  # 0 is OpenAI's "automatic": the fallback schedule
        response_format=response_format,
        granularities=frozenset(granularities),
        stream=stream,
        store=store,
    )
