from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from verbatim.deps import CurrentUser, SettingsDep
from verbatim.engines.registry import ENGINES, price_per_minute

router = APIRouter(prefix="/api/v1", tags=["engines"])


@router.get("/engines")
async def list_engines(user: CurrentUser, settings: SettingsDep) -> dict[str, Any]:
    """Every engine this server knows: whether it is configured here, its models (for the
    local engine, those installed), whether it labels speakers, and estimated prices (USD per
    minute of audio). A request for an unavailable engine gets 422 `engine_unavailable`."""
    items = []
    for spec in ENGINES.values():
        reason = spec.unavailable(settings)
        default = spec.default_model(settings)
        models = spec.models(settings)
        items.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "description": spec.description,
                "available": reason is None,
                "reason": reason,
                "dialogue": spec.dialogue,
                # A dialogue request for more speakers is refused (diarization_unsupported).
                "max_speakers": spec.max_speakers,
                "default_model": default,
                "price_per_minute": price_per_minute(settings, spec.name, default),
                "currency": "USD",
                "models": [
                    {
                        "name": name,
                        "default": name == default,
                        "price_per_minute": price_per_minute(settings, spec.name, name),
                    }
                    for name in models
                ],
            }
        )
    return {"items": items}
