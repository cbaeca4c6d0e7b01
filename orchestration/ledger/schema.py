"""The request ledger's tables: each fact about a report request is stored once.

* ``requests`` — one row per job (a Dagster run, or a cache hit
  ``cache:<cache_key>:<uuid>``): what was asked (institution, report, cache
  key, parameters, period, timezone) and, once known, how it ended (status,
  file). While a launcher holds the in-flight claim for the request its
  ``job_id`` is still empty and ``claim_id`` identifies it; binding the run id
  fills ``job_id``.
* ``recipients`` — one row per (request, user who asked): who to tell, and
  where their notification stands (``waiting`` for the job, ``pending``
  delivery, ``routed`` to channels, or ``unreachable`` by any).
* ``deliveries`` — one row per (recipient, channel): that channel's own
  delivery state, attempts, next attempt, lease, last error and sent time. A
  notification IS a delivery joined with its recipient and request; nothing is
  copied between them, and a new channel is new rows, never a new column.
* ``inflight`` — at most one claim per cache key: the request currently being
  launched or run, with the launcher's liveness lease (see
  :mod:`orchestration.ledger.claims`).
* ``report_files`` — the newest finished file the API knows per cache key.

The schema is changed only through the Alembic migrations next to this module
(``orchestration/ledger/migrations``); a test proves models and migrations agree.
"""

from __future__ import annotations

import sqlalchemy as sa

RECIPIENT_STATES = ("waiting", "pending", "routed", "unreachable")
DELIVERY_STATES = ("pending", "sending", "sent", "dead")
JOB_STATUSES = ("succeeded", "failed")
KINDS = ("run", "cache")

metadata = sa.MetaData()
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(255), nullable=True),
    sa.Column("claim_id", sa.String(32), nullable=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("institution_id", sa.BigInteger(), nullable=False),
    sa.Column("report", sa.String(100), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=False),
    sa.Column("params_json", sa.Text(), nullable=False),
    sa.Column("period", sa.String(64), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("status_of_job", sa.String(16), nullable=True),
    sa.Column("storage_key", sa.String(1024), nullable=True),
    sa.Column("filename", sa.String(255), nullable=True),
    sa.Column("rows", sa.BigInteger(), nullable=True),
    sa.UniqueConstraint("job_id", name="uq_requests_job_id"),
    sa.UniqueConstraint("claim_id", name="uq_requests_claim_id"),
    sa.CheckConstraint("kind IN ('run', 'cache')", name="ck_requests_kind"),
    sa.CheckConstraint(
        "status_of_job IS NULL OR status_of_job IN ('succeeded', 'failed')", name="ck_requests_status_of_job"
    ),
)

recipients = sa.Table(
    "recipients",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column(
        "request_id",
        Id,
        sa.ForeignKey("requests.id", name="fk_recipients_request", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("user_id", sa.BigInteger(), nullable=False),
    sa.Column("subdomain", sa.String(255), nullable=False),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("requested_at", sa.DateTime(), nullable=False),
    sa.Column("launched", sa.Boolean(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.UniqueConstraint("request_id", "user_id", name="uq_recipients_request_user"),
    sa.CheckConstraint("state IN ('waiting', 'pending', 'routed', 'unreachable')", name="ck_recipients_state"),
)
sa.Index("ix_recipients_state", recipients.c.state)
sa.Index("ix_recipients_user", recipients.c.user_id, recipients.c.requested_at)

of_recipient = sa.ForeignKey("recipients.id", name="fk_deliveries_recipient", ondelete="CASCADE")
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("recipient_id", Id, of_recipient, nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
    sa.Column("lease_until", sa.DateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("sent_at", sa.DateTime(), nullable=True),
    sa.UniqueConstraint("recipient_id", "channel", name="uq_deliveries_recipient_channel"),
    sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'dead')", name="ck_deliveries_state"),
)
sa.Index("ix_deliveries_due", deliveries.c.state, deliveries.c.next_attempt_at)

inflight = sa.Table(
    "inflight",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("claim_id", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("lease_until", sa.DateTime(), nullable=False),
)

report_files = sa.Table(
    "report_files",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("storage_key", sa.String(1024), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=True),
    sa.Column("produced_at", sa.DateTime(), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=False),
)
