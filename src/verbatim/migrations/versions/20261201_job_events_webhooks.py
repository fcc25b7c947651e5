"""job events (a NOTIFY per status, progress or stage change, numbered) and webhooks

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-01 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One trigger catches every writer of job rows (the lifecycle, cancellations, the reconciler,
# scripts): each change of status, progress or stage gets the next number of one sequence and
# a NOTIFY, sent by PostgreSQL when (and only if) its transaction commits.
JOB_EVENT_FUNCTION = """
CREATE FUNCTION verbatim_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.progress IS NOT DISTINCT FROM OLD.progress
       AND NEW.stage IS NOT DISTINCT FROM OLD.stage THEN
        RETURN NEW;
    END IF;
    NEW.event_seq := nextval('job_event_seq');
    PERFORM pg_notify('verbatim_job_events', json_build_object(
        'seq', NEW.event_seq,
        'id', NEW.id,
        'user_id', NEW.user_id,
        'tenant_id', NEW.tenant_id,
        'type', NEW.type,
        'status', NEW.status,
        'progress', NEW.progress,
        'stage', NEW.stage,
        'error_code', NEW.error_code,
        'audio_file_id', NEW.audio_file_id,
        'transcription_id', NEW.transcription_id
    )::text);
    RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    op.execute("CREATE SEQUENCE job_event_seq")
    op.add_column(
        "job", sa.Column("event_seq", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.create_index("ix_job_user_event_seq", "job", ["user_id", "event_seq"])
    op.execute(JOB_EVENT_FUNCTION)
    op.execute(
        "CREATE TRIGGER job_event BEFORE INSERT OR UPDATE ON job "
        "FOR EACH ROW EXECUTE FUNCTION verbatim_job_event()"
    )

    op.create_table(
        "webhook_endpoint",
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False, server_default=""),
        sa.Column("events", postgresql.ARRAY(sa.String(length=50)), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("disabled_reason", sa.String(length=100), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_webhook_endpoint_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_webhook_endpoint_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoint")),
    )
    op.create_index(
        op.f("ix_webhook_endpoint_user_id"), "webhook_endpoint", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_webhook_endpoint_tenant_id"), "webhook_endpoint", ["tenant_id"], unique=False
    )

    op.create_table(
        "webhook_delivery",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_response_ms", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attempt_log", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name=op.f("fk_webhook_delivery_endpoint_id_webhook_endpoint"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["job.id"],
            name=op.f("fk_webhook_delivery_job_id_job"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_webhook_delivery_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_webhook_delivery_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    op.create_index(
        "ix_webhook_delivery_endpoint_created",
        "webhook_delivery",
        ["endpoint_id", sa.text("created_at DESC"), "id"],
    )
    op.create_index(
        op.f("ix_webhook_delivery_user_id"), "webhook_delivery", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_webhook_delivery_tenant_id"), "webhook_delivery", ["tenant_id"], unique=False
    )
    op.create_index(
        op.f("ix_webhook_delivery_job_id"), "webhook_delivery", ["job_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("webhook_delivery")
    op.drop_table("webhook_endpoint")
    op.execute("DROP TRIGGER job_event ON job")
    op.execute("DROP FUNCTION verbatim_job_event()")
    op.drop_index("ix_job_user_event_seq", table_name="job")
    op.drop_column("job", "event_seq")
    op.execute("DROP SEQUENCE job_event_seq")
