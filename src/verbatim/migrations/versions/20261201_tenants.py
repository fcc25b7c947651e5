"""tenants: membership and roles, invitations, the audit log, quotas, tenant-wide indexes

Every existing user becomes the owner of their personal tenant. Dedup moves from
(user, sha256) to (tenant, sha256) and topic / voice profile names become unique per tenant:
for personal tenants (one member) these are the same sets. The audit log refuses UPDATE and
DELETE unless the transaction set `verbatim.audit_purge` (the retention task).

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-01 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = sa.Enum(
    "owner", "admin", "member", "viewer", name="tenant_role", native_enum=False, length=20
)

AUDIT_GUARD = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('verbatim.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.add_column(
        "tenant",
        sa.Column(
            "kind",
            sa.Enum("personal", "organisation", name="tenant_kind", native_enum=False, length=20),
            server_default=sa.text("'personal'"),
            nullable=False,
        ),
    )
    for column, kind in (
        ("quota_storage_bytes", sa.BigInteger()),
        ("quota_concurrent_jobs", sa.Integer()),
        ("quota_uploads_per_hour", sa.Integer()),
        ("quota_audio_minutes_per_month", sa.Integer()),
    ):
        op.add_column("tenant", sa.Column(column, kind, nullable=True))

    op.create_table(
        "tenant_member",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_tenant_member_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_tenant_member_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_tenant_member")),
    )
    op.create_index(op.f("ix_tenant_member_user_id"), "tenant_member", ["user_id"])
    op.execute(
        "INSERT INTO tenant_member (tenant_id, user_id, role) "
        "SELECT tenant_id, id, 'owner' FROM \"user\""
    )

    op.create_table(
        "invitation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_invitation_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["user.id"],
            name=op.f("fk_invitation_invited_by_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
    )
    op.create_index(
        "ix_invitation_tenant_created", "invitation", ["tenant_id", sa.text("created_at DESC")]
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=200), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_tenant_created", "audit_log", ["tenant_id", sa.text("created_at DESC"), "id"]
    )
    op.create_index("ix_audit_log_created", "audit_log", [sa.text("created_at DESC"), "id"])
    op.execute(AUDIT_GUARD)
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )

    # Dedup and names per tenant.
    op.drop_constraint("uq_audio_file_user_sha256", "audio_file", type_="unique")
    op.create_unique_constraint(
        "uq_audio_file_tenant_sha256", "audio_file", ["tenant_id", "sha256"]
    )
    op.drop_index("uq_topic_user_name", table_name="topic")
    op.create_index(
        "uq_topic_tenant_name", "topic", ["tenant_id", sa.text("lower(name)")], unique=True
    )
    op.drop_constraint(op.f("uq_voice_profile_user_id"), "voice_profile", type_="unique")
    op.create_unique_constraint(
        op.f("uq_voice_profile_tenant_id"), "voice_profile", ["tenant_id", "name"]
    )

    # Organisation lists, the tenant's jobs view, the concurrency quota, search ownership.
    for table in ("audio_file", "transcription", "job", "collection"):
        op.create_index(
            f"ix_{table}_tenant_created", table, ["tenant_id", sa.text("created_at DESC"), "id"]
        )
    op.create_index(
        "ix_job_tenant_active",
        "job",
        ["tenant_id"],
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    op.create_index(
        "ix_transcription_chunk_user_tenant", "transcription_chunk", ["user_id", "tenant_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_transcription_chunk_user_tenant", table_name="transcription_chunk")
    op.drop_index("ix_job_tenant_active", table_name="job")
    for table in ("audio_file", "transcription", "job", "collection"):
        op.drop_index(f"ix_{table}_tenant_created", table_name=table)
    op.drop_constraint(op.f("uq_voice_profile_tenant_id"), "voice_profile", type_="unique")
    op.create_unique_constraint(
        op.f("uq_voice_profile_user_id"), "voice_profile", ["user_id", "name"]
    )
    op.drop_index("uq_topic_tenant_name", table_name="topic")
    op.create_index("uq_topic_user_name", "topic", ["user_id", sa.text("lower(name)")], unique=True)
    op.drop_constraint("uq_audio_file_tenant_sha256", "audio_file", type_="unique")
    op.create_unique_constraint("uq_audio_file_user_sha256", "audio_file", ["user_id", "sha256"])
    op.execute("DROP TABLE audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("invitation")
    op.drop_table("tenant_member")
    for column in (
        "quota_audio_minutes_per_month",
        "quota_uploads_per_hour",
        "quota_concurrent_jobs",
        "quota_storage_bytes",
        "kind",
    ):
        op.drop_column("tenant", column)
