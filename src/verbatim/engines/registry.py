"""Every speech engine behind one name: what it is, whether this deployment configured it,
which models it offers and what it is estimated to cost.

A request names its engine (and model); `check` refuses an unknown or unconfigured one up
front (422 `engine_unavailable`), so no job is queued that could only fail. Cloud engines are
built per job by `cloud_engine(settings, name)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from verbatim.config import Settings

if TYPE_CHECKING:
    from verbatim.engines.cloud import CloudEngine

LOCAL_ENGINE = "faster-whisper"
OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"

# Estimated list prices per minute of audio (USD, late 2026 public price pages), overridable
# per engine or per "engine/model" with VERBATIM_ENGINE_PRICES. Local runs cost nothing here
# (the machine is already paid for).
DEFAULT_ENGINE_PRICES: dict[str, float] = {
    LOCAL_ENGINE: 0.0,
    "openai": 0.006,
    "assemblyai": 0.0025,
    "google": 0.016,
    "yandex": 0.0033,
}


@dataclass(frozen=True)
class EngineSpec:
    name: str
    kind: str  # "local" or "cloud"
    description: str
    dialogue: bool  # can label speakers (mode "dialogue")
    # None when configured, else why not (shown by GET /api/v1/engines).
    unavailable: Callable[[Settings], str | None]
    models: Callable[[Settings], list[str]]
    default_model: Callable[[Settings], str]
    # The most speakers the provider labels in dialogue mode (None: no documented limit).
    max_speakers: int | None = None


def _local_models(settings: Settings) -> list[str]:
    from verbatim.engines.models import installed_models

    return [m.name for m in installed_models(settings.models_dir)]


def _openai_unavailable(settings: Settings) -> str | None:
    keyless_server = settings.openai_base_url.rstrip("/") != OPENAI_DEFAULT_BASE
    if settings.openai_api_key or keyless_server:
        return None
    return "set VERBATIM_OPENAI_API_KEY (or VERBATIM_OPENAI_BASE_URL for a keyless server)"


def _with_default(models: list[str], default: str) -> list[str]:
    return models if default in models else [default, *models]


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            name=LOCAL_ENGINE,
            kind="local",
            description="Whisper on this machine (CTranslate2); speakers by voice or channel",
            dialogue=True,
            unavailable=lambda s: None,
            models=_local_models,
            default_model=lambda s: s.default_model,
        ),
        EngineSpec(
            name="openai",
            kind="cloud",
            description="Any OpenAI-compatible /v1/audio/transcriptions server",
            dialogue=False,
            unavailable=_openai_unavailable,
            models=lambda s: _with_default(list(s.openai_models), s.openai_model),
            default_model=lambda s: s.openai_model,
        ),
        EngineSpec(
            name="assemblyai",
            kind="cloud",
            description="AssemblyAI (REST API v2): speaker labels, language detection",
            dialogue=True,
            unavailable=lambda s: (
                None if s.assemblyai_api_key else "set VERBATIM_ASSEMBLYAI_API_KEY"
            ),
            models=lambda s: _with_default(list(s.assemblyai_models), s.assemblyai_speech_model),
            default_model=lambda s: s.assemblyai_speech_model,
        ),
        EngineSpec(
            name="google",
            kind="cloud",
            description="Google Cloud Speech-to-Text v1 (REST): word offsets, diarization",
            dialogue=True,
            unavailable=lambda s: None if s.google_api_key else "set VERBATIM_GOOGLE_API_KEY",
            models=lambda s: _with_default(list(s.google_models), s.google_model),
            default_model=lambda s: s.google_model,
        ),
        EngineSpec(
            name="yandex",
            kind="cloud",
            description="Yandex SpeechKit asynchronous recognition (REST API v3)",
            dialogue=True,
            unavailable=lambda s: None if s.yandex_api_key else "set VERBATIM_YANDEX_API_KEY",
            models=lambda s: _with_default(list(s.yandex_models), s.yandex_model),
            default_model=lambda s: s.yandex_model,
            # "Recognition results may not feature more than two speakers"
            # (https://yandex.cloud/en/docs/speechkit/stt/speaker-labeling).
            max_speakers=2,
        ),
    )
}


def get_spec(name: str) -> EngineSpec | None:
    return ENGINES.get(name)


def price_per_minute(settings: Settings, engine: str, model: str) -> float:
    prices = {**DEFAULT_ENGINE_PRICES, **settings.engine_prices}
    specific = prices.get(f"{engine}/{model}")
    return float(specific if specific is not None else prices.get(engine, 0.0))


def cloud_engine(settings: Settings, name: str) -> CloudEngine:
    if name == "openai":
        from verbatim.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(settings)
    if name == "assemblyai":
        from verbatim.engines.assemblyai_engine import AssemblyAIEngine

        return AssemblyAIEngine(settings)
    if name == "google":
        from verbatim.engines.google_engine import GoogleEngine

        return GoogleEngine(settings)
    if name == "yandex":
        from verbatim.engines.yandex_engine import YandexEngine

        return YandexEngine(settings)
    raise KeyError(name)
