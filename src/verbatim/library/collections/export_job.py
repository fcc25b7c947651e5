"""The collection export job: every transcription of a collection in the chosen formats, in
one zip, stored under `exports/` for its owner to download.

The items are read in their order when the job starts; each transcription is then rendered with
the transcript exporters (transcriptions/export.py) in a short read-only transaction of its own,
and written to a zip file in the data directory's tmp folder (in a thread). The zip is stored
once complete (`storage.put_file`: never visible half-written) at a key made of the user and the
job, so running the job twice writes the same object. Housekeeping deletes exports once they are
older than max(2 x VERBATIM_PRESIGNED_GET_EXPIRES_S, 1 h); a download after that answers 410.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from verbatim.db import session_scope
from verbatim.errors import AppError
from verbatim.jobs.lifecycle import JobContext, JobFailed, JobKind, TransientJobError
from verbatim.kit.filenames import safe_filename
from verbatim.library.collections.service import export_download_path
from verbatim.models import (
    AudioFile,
    Collection,
    Job,
    JobType,
    Transcription,
    TranscriptionCollection,
    TranscriptionStatus,
    User,
)
from verbatim.models.base import utcnow
from verbatim.storage import EXPORTS_PREFIX, StorageUnavailable
from verbatim.tenancy.scope import act_in
from verbatim.transcriptions import service as transcriptions

log = structlog.get_logger(__name__)

ZIP_PREFIX = "collection-export-"


@dataclass
class Inputs:
    job_id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    collection_id: uuid.UUID
    collection_name: str
    collection_description: str | None
    formats: list[str]
    # (transcription id, title, status) in the collection's order when the job started.
    items: list[tuple[uuid.UUID, str, str]]
    path: Path | None = field(default=None)


@dataclass(frozen=True)
class Built:
    key: str
    filename: str
    size: int
    exported: int
    skipped: list[dict[str, Any]]


def export_key(user_id: uuid.UUID, job_id: uuid.UUID, filename: str) -> str:
    return f"{EXPORTS_PREFIX}user_{user_id}/collections/{job_id}/{filename}"


class CollectionExportJob(JobKind[Inputs, Built]):
    type = JobType.collection_export
    stage = "exporting"

    async def claim(self, session: AsyncSession, job: Job) -> Inputs:
        collection = await session.scalar(
            select(Collection).where(
                Collection.id == uuid.UUID(str(job.payload["collection_id"])),
                Collection.tenant_id == job.tenant_id,
            )
        )
        if collection is None:
            raise JobFailed("collection_missing", "The collection was deleted")
        rows = await session.execute(
            select(
                Transcription.id,
                AudioFile.title,
                AudioFile.original_filename,
                Transcription.status,
            )
            .join(
                TranscriptionCollection,
                TranscriptionCollection.transcription_id == Transcription.id,
            )
            .join(AudioFile, AudioFile.id == Transcription.audio_file_id)
            .where(
                TranscriptionCollection.collection_id == collection.id,
                Transcription.tenant_id == job.tenant_id,
            )
            .order_by(TranscriptionCollection.position, TranscriptionCollection.transcription_id)
        )
        return Inputs(
            job_id=job.id,
            user_id=job.user_id,
            tenant_id=job.tenant_id,
            collection_id=collection.id,
            collection_name=collection.name,
            collection_description=collection.description,
            formats=[str(f) for f in job.payload["formats"]],
            items=[(tid, title or filename, status.value) for tid, title, filename, status in rows],
        )

    async def work(self, ctx: JobContext, inputs: Inputs) -> Built:
        services = ctx.services
        settings = services.settings
        await asyncio.to_thread(settings.tmp_dir.mkdir, 0o700, True, True)
        inputs.path = settings.tmp_dir / f"{ZIP_PREFIX}{inputs.job_id}.zip"
        archive = await asyncio.to_thread(zipfile.ZipFile, inputs.path, "w", zipfile.ZIP_DEFLATED)
        skipped: list[dict[str, Any]] = []
        manifest_items: list[dict[str, Any]] = []
        try:
            for n, (tid, title, status) in enumerate(inputs.items, start=1):
                await ctx.progress(100.0 * (n - 1) / max(len(inputs.items), 1))
                if status != TranscriptionStatus.completed.value:
                    skipped.append({"transcription_id": str(tid), "title": title, "status": status})
                    continue
                files = await self._render(ctx, inputs, tid, n, archive)
                if files is None:  # deleted meanwhile
                    skipped.append(
                        {"transcription_id": str(tid), "title": title, "status": "deleted"}
                    )
                    continue
                manifest_items.append(
                    {
                        "position": n - 1,
                        "transcription_id": str(tid),
                        "title": title,
                        "files": files,
                    }
                )
            manifest = {
                "collection": {
                    "id": str(inputs.collection_id),
                    "name": inputs.collection_name,
                    "description": inputs.collection_description,
                },
                "exported_at": utcnow().isoformat(),
                "formats": inputs.formats,
                "items": manifest_items,
                "skipped": skipped,
            }
            await asyncio.to_thread(
                archive.writestr,
                "manifest.json",
                json.dumps(manifest, indent=2, ensure_ascii=False),
            )
        finally:
            await asyncio.to_thread(archive.close)
        stem = safe_filename(inputs.collection_name)
        if stem == "audio" and inputs.collection_name.strip().lower() != "audio":
            stem = "collection"  # nothing ASCII in the name
        filename = f"{stem}.zip"
        key = export_key(inputs.user_id, inputs.job_id, filename)
        size = (await asyncio.to_thread(inputs.path.stat)).st_size
        try:
            await asyncio.to_thread(services.storage.put_file, inputs.path, key, "application/zip")
        except StorageUnavailable as exc:
            raise TransientJobError("storage_unavailable", exc.message) from exc
        return Built(
            key=key,
            filename=filename,
            size=size,
            exported=len(manifest_items),
            skipped=skipped,
        )

    async def _render(
        self,
        ctx: JobContext,
        inputs: Inputs,
        transcription_id: uuid.UUID,
        n: int,
        archive: zipfile.ZipFile,
    ) -> list[str] | None:
        files: list[str] = []
        async with session_scope(ctx.services.sessionmaker) as session:
            user = await session.get(User, inputs.user_id)
            if user is None:
                raise JobFailed("user_missing", "The account was deleted")
            act_in(user, inputs.tenant_id)  # the job's library, authorised when it was queued
            for fmt in inputs.formats:
                try:
                    rendered = await transcriptions.render_source(
                        await transcriptions.export_transcription(
                            session, user, transcription_id, fmt
                        )
                    )
                except AppError:  # deleted, or no longer completed (reprocessing)
                    return None
                name = f"{n:03d}_{rendered.filename}"
                await asyncio.to_thread(archive.writestr, name, rendered.content)
                files.append(name)
        return files

    async def complete(
        self, ctx: JobContext, session: AsyncSession, job: Job, inputs: Inputs, result: Built
    ) -> None:
        job.payload = {**job.payload, "export_key": result.key}
        job.update_detail(
            collection_id=str(inputs.collection_id),
            formats=inputs.formats,
            filename=result.filename,
            size_bytes=result.size,
            transcriptions=result.exported,
            skipped=result.skipped,
            download_url=export_download_path(inputs.collection_id, inputs.job_id),
        )
        log.info(
            "collection_exported",
            collection_id=str(inputs.collection_id),
            transcriptions=result.exported,
            skipped=len(result.skipped),
            bytes=result.size,
        )

    async def release(self, inputs: Inputs) -> None:
        if inputs.path is not None:
            await asyncio.to_thread(inputs.path.unlink, True)
