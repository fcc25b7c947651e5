from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from verbatim.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, utcnow


class JobType(enum.StrEnum):
    transcription = "transcription"
    download = "download"
    collection_export = "collection_export"
    topic_scoring = "topic_scoring"
    search_index = "search_index"  # task search.index: chunks and embeddings of a transcript
    webhook_delivery = "webhook_delivery"  # task webhooks.deliver: one message to one endpoint
    # task transcriptions.reconcile: the engines' results of a multi-engine run voted into one
    transcription_reconcile = "transcription_reconcile"
    reprocess = "reprocess"  # task transcriptions.reprocess: a re-run becoming a new version


class JobStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = frozenset({JobStatus.completed, JobStatus.failed, JobStatus.cancelled})

# running -> running: a stalled job picked up again after its worker died.
# running -> pending: a transient failure waiting for its retry.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.pending: frozenset({JobStatus.running, JobStatus.cancelled, JobStatus.failed}),
    JobStatus.running: frozenset(
        {
            JobStatus.running,
            JobStatus.pending,
            JobStatus.completed,
            JobStatus.failed,
            JobStatus.cancelled,
        }
    ),
    JobStatus.completed: frozenset(),
    JobStatus.failed: frozenset(),
    JobStatus.cancelled: frozenset(),
}


class InvalidTransition(Exception):
    def __init__(self, current: JobStatus, target: JobStatus) -> None:
        super().__init__(f"job cannot go from {current} to {target}")
        self.current = current
        self.target = target


class Job(IdMixin, TimestampMixin, OwnedMixin, Base):
    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_user_status", "user_id", "status"),
        # The list, newest first, alone and per filter (keyset pages, issue 15). The type one
        # also serves the download rate limit (a user's recent jobs of one type).
        Index(
            "ix_job_user_created",
            "user_id",
            text("created_at DESC"),
            "id",
            postgresql_include=["tenant_id"],
        ),
        Index(
            "ix_job_user_status_created",
            "user_id",
            "status",
            text("created_at DESC"),
            "id",
            postgresql_include=["tenant_id"],
        ),
        Index(
            "ix_job_user_type_created_id",
            "user_id",
            "type",
            text("created_at DESC"),
            "id",
            postgresql_include=["tenant_id"],
        ),
        # Live events: a user's jobs changed after an event number (Last-Event-ID resume).
        Index("ix_job_user_event_seq", "user_id", "event_seq"),
        # Organisation lists and the tenant's jobs view (decision 0019); the partial one counts
        # a tenant's unfinished jobs for its concurrency quota.
        Index("ix_job_tenant_created", "tenant_id", text("created_at DESC"), "id"),
        Index(
            "ix_job_tenant_active",
            "tenant_id",
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
    )

    type: Mapped[JobType] = mapped_column(
        Enum(JobType, name="job_type", native_enum=False, length=30), nullable=False
    )
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", native_enum=False, length=20),
        default=JobStatus.pending,
        nullable=False,
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    stage: Mapped[str | None] = mapped_column(String(50))
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    # The procrastinate job currently carrying this work (it changes when the work is re-queued).
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    audio_file_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("audio_file.id", ondelete="SET NULL"), index=True
    )
    transcription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("transcription.id", ondelete="SET NULL"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, nullable=False)
    # Set by the job_event trigger (migration 0012) on every change of status, progress or
    # stage, from one sequence: the id of the live event that change produced.
    event_seq: Mapped[int] = mapped_column(
        BigInteger, server_default="0", server_onupdate=FetchedValue(), nullable=False
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False
    )

    @property
    def detail(self) -> dict[str, Any]:
        """What the owner sees beyond status and progress (a download's URL and bytes, ...).

        Kept under payload["detail"]; the rest of the payload is the task's input.
        """
        detail = (self.payload or {}).get("detail")
        return dict(detail) if isinstance(detail, dict) else {}

    def update_detail(self, **values: Any) -> None:
        # Assign a new dict: JSONB columns do not track changes made in place.
        self.payload = {**(self.payload or {}), "detail": {**self.detail, **values}}

    def transition(self, target: JobStatus) -> None:
        if target not in ALLOWED_TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, target)
        now = utcnow()
        if target is JobStatus.running and self.started_at is None:
            self.started_at = now
        if target in TERMINAL:
            self.finished_at = now
        self.status = target
