"""The embedding model: bundled, loaded once per process, 384-d normalised vectors that put
paraphrases close; query embeddings off the event loop; another model by path."""

from __future__ import annotations

import asyncio
import math
import os
import time
from pathlib import Path

import pytest

from verbatim.config import Settings
from verbatim.search import embedding


def cosine(a: list[float], b: list[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env="test", data_dir=tmp_path / "data")


async def test_queries_are_embedded_off_the_loop_by_the_one_loaded_model(
    settings: Settings,
) -> None:
    name, passages = await embedding.embed_passages_async(
        [
            "We agreed to move the delivery of the steel beams to March.",
            "The budget grew by twelve percent because of energy prices.",
        ],
        settings,
    )
    assert name == embedding.DEFAULT_MODEL_NAME == embedding.model_name(settings)
    assert embedding.get_embedder(settings) is embedding.get_embedder(settings)
    assert all(len(v) == 384 and math.isclose(cosine(v, v), 1.0, rel_tol=1e-3) for v in passages)

    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    running = asyncio.create_task(ticker())
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            embedding.embed_query(q, settings)
            for q in ["when is the shipment now due?", "why did costs go up?"] * 4
        )
    )
    elapsed = time.monotonic() - started
    stop.set()
    await running
    # The loop kept turning while eight queries were embedded in threads.
    assert ticks >= 3, (ticks, elapsed)
    (_, delivery), (_, costs) = results[0], results[1]
    assert cosine(delivery, passages[0]) > cosine(delivery, passages[1]) + 0.1
    assert cosine(costs, passages[1]) > cosine(costs, passages[0]) + 0.1
    assert {name for name, _ in results} == {embedding.DEFAULT_MODEL_NAME}
    # Assembled once under the data dir: the ONNX file and the vendored tokenizer files.
    folder = settings.data_dir / "models" / "embedding" / embedding.DEFAULT_MODEL_NAME
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["model.onnx", "source.json", *embedding.TOKENIZER_FILES]
    )


async def test_another_model_is_named_by_path_and_carries_its_own_name(
    settings: Settings, tmp_path: Path
) -> None:
    default_dir = embedding.assemble_default_model(settings.data_dir / "models" / "embedding")
    other = tmp_path / "my-minilm"
    other.mkdir()
    for name in ("model.onnx", *embedding.TOKENIZER_FILES):
        os.symlink((default_dir / name).resolve(), other / name)
    by_path = Settings(env="test", data_dir=settings.data_dir, embedding_model=other)
    name = embedding.model_name(by_path)
    assert name.startswith("my-minilm-") and name != embedding.DEFAULT_MODEL_NAME
    try:
        got, [vector] = await embedding.embed_passages_async(["the same weights"], by_path)
        assert got == name
        _, [reference] = await embedding.embed_passages_async(["the same weights"], settings)
        assert cosine(vector, reference) > 0.999
    finally:
        embedding.get_embedder(settings)  # the default again for the tests that follow

    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(embedding.EmbeddingModelError):
        embedding.model_name(Settings(env="test", embedding_model=empty))
