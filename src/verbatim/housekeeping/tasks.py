"""Periodic storage housekeeping, on the `default` queue (any worker runs it)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from verbatim.housekeeping import service
from verbatim.queue import queue
from verbatim.services import get_services


@queue.periodic(cron="*/15 * * * *", periodic_id="storage_cleanup")
@queue.task(name="storage.cleanup", queueing_lock="storage.cleanup")
async def cleanup(timestamp: int) -> dict[str, Any]:
    """Temporary files, expired direct uploads, stale multipart uploads, staging leftovers."""
    services = get_services()
    report = await service.cleanup(services.sessionmaker, services.storage, services.settings)
    return asdict(report)


@queue.periodic(cron="23 * * * *", periodic_id="storage_retention")
@queue.task(name="storage.retention", queueing_lock="storage.retention")
async def retention(timestamp: int) -> int:
    """Delete media past VERBATIM_MEDIA_RETENTION_DAYS (unset: nothing); transcripts stay."""
    services = get_services()
    return await service.apply_retention(
        services.sessionmaker, services.storage, services.settings.media_retention_days
    )


@queue.periodic(cron="41 * * * *", periodic_id="audit_retention")
@queue.task(name="audit.retention", queueing_lock="audit.retention")
async def audit_retention(timestamp: int) -> int:
    """Delete audit rows older than VERBATIM_AUDIT_RETENTION_DAYS (unset: keep them all)."""
    services = get_services()
    return await service.purge_audit(services.sessionmaker, services.settings.audit_retention_days)
