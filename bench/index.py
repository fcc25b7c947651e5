"""Search indexing throughput: chunks per second through the indexing path, against bare
fastembed on the same chunk texts with the same model, in the same run.

Service: `verbatim.search.reindex.reindex` on a fresh embedded PostgreSQL (migrated, HNSW and
GIN indexes in place): per transcription, read it and its segments, chunk, embed in batches in
the embedding thread, replace its chunks in one transaction. That is the `search.index` job's
work minus the lifecycle's few job-row updates (claim, progress once a second, complete).
Reference: `Embedder.embed` of the exact chunk texts, model already loaded: the embedding
alone, the floor of what indexing can cost.

Transcripts are made of real English prose (the sentences of this repository's docs), laid out
like faster-whisper output (segments of up to 18 words with word timestamps), so chunk lengths
and token counts are those of real text.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchError

WORD_S = 0.32  # seconds per word: about 190 words a minute


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("index")
    group.add_argument(
        "--index-transcripts", type=int, default=12, help="transcripts to index (default 12)"
    )
    group.add_argument(
        "--index-words", type=int, default=1600, help="words per transcript (default 1600)"
    )


def prose_sentences() -> list[str]:
    """Sentences of the docs: plain prose, no code, tables or headings."""
    sentences: list[str] = []
    for path in sorted((REPO_ROOT / "docs").rglob("*.md")):
        in_code = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code or line.startswith(("#", "|", "    ")) or not line.strip():
                continue
            plain = re.sub(r"[`*_\[\]]|\(http[^)]*\)|\([^)]*\.md[^)]*\)", "", line).strip(" -")
            sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", plain) if len(s.split()) >= 6)
    if len(sentences) < 200:
        raise BenchError("docs/ has too little prose to build transcripts from")
    return sentences


def transcripts(count: int, words_each: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """(text, segments) pairs shaped like the engine's output."""
    sentences = prose_sentences()
    out = []
    cursor = 0
    for _ in range(count):
        segments: list[dict[str, Any]] = []
        t = 0.0
        total = 0
        while total < words_each:
            words = sentences[cursor % len(sentences)].split()
            cursor += 1
            for j in range(0, len(words), 18):
                part = words[j : j + 18]
                timed = []
                start = t
                for w in part:
                    timed.append({"start": round(t, 3), "end": round(t + 0.25, 3), "word": " " + w})
                    t += WORD_S
                segments.append(
                    {"start": start, "end": t - 0.07, "text": " " + " ".join(part), "words": timed}
                )
            total += len(words)
            t += 0.4
        text = " ".join(s["text"] for s in segments).strip()
        out.append((text, segments))
    return out


async def _run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from sqlalchemy import func, select

    from verbatim import embedded_db, migrate
    from verbatim.config import Settings
    from verbatim.db import make_engine, make_sessionmaker
    from verbatim.models import (
        AudioFile,
        Role,
        Segment,
        SourceType,
        Tenant,
        Transcription,
        TranscriptionChunk,
        TranscriptionStatus,
        User,
    )
    from verbatim.search.chunking import SegmentIn, chunk_transcript
    from verbatim.search.embedding import get_embedder
    from verbatim.search.reindex import reindex

    server = await asyncio.to_thread(embedded_db.start, root / "postgres")
    engine = None
    try:
        url = server.sqlalchemy_url
        await asyncio.to_thread(migrate.upgrade, url)
        settings = Settings(env="test", data_dir=root / "data", database_url=server.uri)
        engine = make_engine(url, 4)
        sessionmaker = make_sessionmaker(engine)
        docs = transcripts(args.index_transcripts, args.index_words)
        ids = []
        async with sessionmaker() as session:
            tenant = Tenant(name="bench")
            session.add(tenant)
            await session.flush()
            user = User(
                tenant_id=tenant.id,
                email="bench@example.com",
                password_hash="x",
                role=Role.user,
                is_active=True,
            )
            session.add(user)
            await session.flush()
            for i, (text, segments) in enumerate(docs):
                audio = AudioFile(
                    user_id=user.id,
                    tenant_id=tenant.id,
                    storage_key=f"bench/{i}",
                    original_filename=f"bench-{i}.wav",
                    size_bytes=1,
                    sha256=uuid.uuid4().hex * 2,
                    mime_type="audio/wav",
                    container="wav",
                    codec="pcm_s16le",
                    duration=segments[-1]["end"],
                    has_video=False,
                    source_type=SourceType.upload,
                )
                session.add(audio)
                await session.flush()
                transcription = Transcription(
                    user_id=user.id,
                    tenant_id=tenant.id,
                    audio_file_id=audio.id,
                    status=TranscriptionStatus.completed,
                    language="en",
                    engine="faster-whisper",
                    model_name="tiny.en",
                    options={},
                    text=text,
                )
                session.add(transcription)
                await session.flush()
                session.add_all(
                    Segment(transcription_id=transcription.id, index=k, speaker=None, **s)
                    for k, s in enumerate(segments)
                )
                ids.append(transcription.id)
            await session.commit()

        # The same chunk texts the service will embed.
        texts = [
            c.text
            for text, segments in docs
            for c in chunk_transcript(text, [SegmentIn(**s) for s in segments])
        ]
        embedder = await asyncio.to_thread(get_embedder, settings)  # load once, untimed
        await asyncio.to_thread(embedder.embed, texts[:8])  # warm
        words = [len(t.split()) for t in texts]
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(embedder.folder / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        tokens = [len(e.ids) for e in tokenizer.encode_batch(texts)]
        print(
            f"{len(ids)} transcripts, {len(texts)} chunks: words per chunk median "
            f"{statistics.median(words):.0f} (min {min(words)}, max {max(words)}), "
            f"tokens per chunk median {statistics.median(tokens):.0f} "
            f"(max {max(tokens)}; the model reads 256)",
            flush=True,
        )

        started = time.monotonic()
        await asyncio.to_thread(embedder.embed, texts, settings.embedding_batch_size)
        reference_s = time.monotonic() - started
        reference = len(texts) / reference_s
        print(
            f"reference: bare embedding {reference:.1f} chunks/s ({reference_s:.1f} s)", flush=True
        )

        report = await reindex(sessionmaker, settings, ids)
        async with sessionmaker() as session:
            stored = await session.scalar(select(func.count()).select_from(TranscriptionChunk))
        if report.chunks != len(texts) or stored != len(texts):
            raise BenchError(
                f"indexed {report.chunks} chunks, stored {stored}, expected {len(texts)}"
            )
        service = report.chunks_per_s
        print(
            f"service: indexing {service:.1f} chunks/s ({report.seconds:.1f} s, read + chunk "
            f"+ embed + write with HNSW/GIN upkeep); ratio service/reference "
            f"{service / reference:.2f}",
            flush=True,
        )
        print("target: >= 100 chunks/s per worker", flush=True)
        return {
            "transcripts": len(ids),
            "chunks": len(texts),
            "words_per_chunk_median": statistics.median(words),
            "tokens_per_chunk_median": statistics.median(tokens),
            "reference_chunks_per_s": round(reference, 2),
            "service_chunks_per_s": round(service, 2),
            "ratio": round(service / reference, 3),
            "embedding_threads": settings.embedding_threads,
            "batch_size": settings.embedding_batch_size,
        }
    finally:
        if engine is not None:
            await engine.dispose()
        await asyncio.to_thread(server.stop)


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="verbatim-bench-index-", dir=args.tmp_dir))
    try:
        return asyncio.run(_run(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
