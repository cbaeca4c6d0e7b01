"""Baseline: the tables ``create_all`` made before the ledger had migrations.

Deployments from before Alembic already have some or all of these tables (the
API created ``report_requests``/``inflight``/``report_files``, the Dagster
sensor ``notifications``), with no ``alembic_version``. This revision creates
only the ones that are missing, so every database — empty, partly or fully
created by the old code — reaches the same starting point and the next
revision can carry its rows over. The definitions are frozen copies of the old
models: never edit them.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _legacy_tables() -> sa.MetaData:
    meta = sa.MetaData()
    notifications = sa.Table(
        "notifications",
        meta,
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(255), nullable=False),
        sa.Column("recipient_user_id", sa.BigInteger(), nullable=False),
        sa.Column("institution_id", sa.BigInteger(), nullable=False),
        sa.Column("subdomain", sa.String(255), nullable=False),
        sa.Column("report", sa.String(100), nullable=False),
        sa.Column("status_of_job", sa.String(16), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("storage_key", sa.String(1024), nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("period", sa.String(64), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("webhook_sent_at", sa.DateTime(), nullable=True),
        sa.Column("email_sent_at", sa.DateTime(), nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.UniqueConstraint("job_id", "recipient_user_id", name="uq_notifications_job_recipient"),
        sa.UniqueConstraint("idempotency_key", name="uq_notifications_idempotency_key"),
        sa.CheckConstraint("state IN ('waiting', 'pending', 'sending', 'sent', 'dead')", name="ck_notifications_state"),
        sa.CheckConstraint(
            "status_of_job IS NULL OR status_of_job IN ('succeeded', 'failed')", name="ck_notifications_status_of_job"
        ),
    )
    sa.Index("ix_notifications_due", notifications.c.state, notifications.c.next_attempt_at)
    report_requests = sa.Table(
        "report_requests",
        meta,
        sa.Column("job_id", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), primary_key=True),
        sa.Column("institution_id", sa.BigInteger(), nullable=False),
        sa.Column("subdomain", sa.String(255), nullable=False),
        sa.Column("report", sa.String(100), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("launched", sa.Boolean(), nullable=False),
        sa.Column("storage_key", sa.String(1024), nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("period", sa.String(64), nullable=True),
    )
    sa.Index(
        "ix_report_requests_user",
        report_requests.c.institution_id,
        report_requests.c.user_id,
        report_requests.c.requested_at,
    )
    sa.Table(
        "inflight",
        meta,
        sa.Column("cache_key", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    sa.Table(
        "report_files",
        meta,
        sa.Column("cache_key", sa.String(64), primary_key=True),
        sa.Column("storage_key", sa.String(1024), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("produced_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
    )
    return meta


def upgrade() -> None:
    # checkfirst: tables an old deployment already has are kept with their rows.
    _legacy_tables().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    _legacy_tables().drop_all(op.get_bind(), checkfirst=True)
