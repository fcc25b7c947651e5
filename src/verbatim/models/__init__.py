"""All tables; importing this module registers every model on Base.metadata."""

from verbatim.models.api_key import ApiKey
from verbatim.models.audio_file import AudioFile, SourceType
from verbatim.models.audit import AuditLog
from verbatim.models.base import Base
from verbatim.models.collection import Collection, TranscriptionCollection
from verbatim.models.job import Job, JobStatus, JobType
from verbatim.models.membership import Invitation, TenantMember, TenantRole
from verbatim.models.rate_limit import RateLimit
from verbatim.models.refresh_token import RefreshToken
from verbatim.models.search import TranscriptionChunk
from verbatim.models.tenant import Tenant, TenantKind
from verbatim.models.topic import AssignedBy, AssignmentStatus, Topic, TranscriptionTopic
from verbatim.models.transcription import (
    Mode,
    PartialSegment,
    Segment,
    Speaker,
    Transcription,
    TranscriptionStatus,
)
from verbatim.models.transcription_version import TranscriptionVersion, VersionKind
from verbatim.models.upload_session import UploadSession, UploadStatus
from verbatim.models.usage import UsageEvent
from verbatim.models.user import Role, User
from verbatim.models.voice_profile import VoiceProfile
from verbatim.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AssignedBy",
    "AssignmentStatus",
    "AudioFile",
    "AuditLog",
    "Base",
    "Collection",
    "Invitation",
    "Job",
    "JobStatus",
    "JobType",
    "Mode",
    "PartialSegment",
    "RateLimit",
    "RefreshToken",
    "Role",
    "Segment",
    "SourceType",
    "Speaker",
    "Tenant",
    "TenantKind",
    "TenantMember",
    "TenantRole",
    "Topic",
    "Transcription",
    "TranscriptionChunk",
    "TranscriptionCollection",
    "TranscriptionStatus",
    "TranscriptionTopic",
    "TranscriptionVersion",
    "UploadSession",
    "UploadStatus",
    "UsageEvent",
    "User",
    "VersionKind",
    "VoiceProfile",
    "WebhookDelivery",
    "WebhookEndpoint",
]
