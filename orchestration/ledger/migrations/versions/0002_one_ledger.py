"""One ledger: requests + recipients replace report_requests + notifications.

Before, every request wrote the same facts twice: to ``report_requests`` (the
history and recipients) and to ``notifications`` (the outbox). This revision
moves every row into ``requests`` (one per job) and ``recipients`` (one per
job and user, carrying the notification's delivery state), keeping the
notification ids (``lxp-reports outbox retry ID`` keeps working) and every
delivery state, so nothing queued, sent or dead is lost or sent again. A
requester recorded without a notification (a crash between the two old
writes) becomes a ``waiting`` recipient, which is what it would have been.
The period is stored as the recipient reads it from now on ("06/2026",
"01/01/2026 a 31/03/2026"), so old rows' "2026-06" / "2026-01-01_2026-03-31"
are rewritten the way the old e-mail code printed them (frozen here: a
migration must not follow later code). ``inflight`` gains the claim id and
liveness lease; claims that already know their run are kept (with an expired
lease), claims without a run belonged to a launcher that is gone and are
dropped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create_new_tables() -> None:
    op.create_table(
        "requests",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
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
    op.create_table(
        "recipients",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            _Id,
            sa.ForeignKey("requests.id", name="fk_recipients_request", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("subdomain", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("launched", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("webhook_sent_at", sa.DateTime(), nullable=True),
        sa.Column("email_sent_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("request_id", "user_id", name="uq_recipients_request_user"),
        sa.CheckConstraint("state IN ('waiting', 'pending', 'sending', 'sent', 'dead')", name="ck_recipients_state"),
    )
    op.create_index("ix_recipients_due", "recipients", ["state", "next_attempt_at"])
    op.create_index("ix_recipients_user", "recipients", ["user_id", "requested_at"])
    op.create_table(
        "inflight_v2",
        sa.Column("cache_key", sa.String(64), primary_key=True),
        sa.Column("claim_id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
    )


def _rows(conn: sa.Connection, name: str, order_by: str) -> list[Any]:
    table = sa.Table(name, sa.MetaData(), autoload_with=conn)
    return list(conn.execute(sa.select(table).order_by(*(table.c[c] for c in order_by.split(",")))).mappings())


def _insert(conn: sa.Connection, name: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = sa.Table(name, sa.MetaData(), autoload_with=conn)
    for start in range(0, len(rows), 1000):
        conn.execute(sa.insert(table), rows[start : start + 1000])
    if conn.dialect.name == "postgresql":
        # Rows were inserted with explicit ids: move the sequence past them.
        conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT MAX(id) FROM {name}))")


def _period_text(period: str | None) -> str | None:
    """The old rows' period as the e-mail printed it: ``2026-06`` -> ``06/2026``,
    ``2026-01-01_2026-03-31`` -> ``01/01/2026 a 31/03/2026``; anything else unchanged."""
    if not period:
        return period
    if m := re.fullmatch(r"(\d{4})-(\d{2})", period):
        return f"{m[2]}/{m[1]}"
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})_(\d{4})-(\d{2})-(\d{2})", period):
        return f"{m[3]}/{m[2]}/{m[1]} a {m[6]}/{m[5]}/{m[4]}"
    return period


def _carry_rows_over(conn: sa.Connection) -> None:
    asked = _rows(conn, "report_requests", "requested_at,job_id,user_id")
    notified = _rows(conn, "notifications", "id")
    jobs: dict[str, dict[str, Any]] = {}
    for r in asked:
        jobs.setdefault(
            r["job_id"],
            {
                "job_id": r["job_id"],
                "claim_id": None,
                "kind": "cache" if r["kind"] == "cache" else "run",
                "institution_id": r["institution_id"],
                "report": r["report"],
                "cache_key": r["cache_key"],
                "params_json": r["params_json"],
                "period": r["period"],
                "timezone": r["timezone"],
                "created_at": r["requested_at"],
                "status_of_job": "succeeded" if r["kind"] == "cache" else None,
                "storage_key": r["storage_key"],
                "filename": r["filename"],
                "rows": r["rows"],
            },
        )
    for n in notified:
        job = jobs.setdefault(
            n["job_id"],
            {
                "job_id": n["job_id"],
                "claim_id": None,
                "kind": "cache" if n["cached"] else "run",
                "institution_id": n["institution_id"],
                "report": n["report"],
                "cache_key": "",
                "params_json": "{}",
                "period": n["period"],
                "timezone": n["timezone"],
                "created_at": n["created_at"],
                "status_of_job": None,
                "storage_key": None,
                "filename": None,
                "rows": None,
            },
        )
        for name in ("period", "timezone"):  # older rows may have them on one side only
            if job[name] is None:
                job[name] = n[name]
        if n["status_of_job"] is not None and job["status_of_job"] in (None, "succeeded"):
            job["status_of_job"] = n["status_of_job"]
            job["storage_key"] = n["storage_key"] if n["status_of_job"] == "succeeded" else job["storage_key"]
            job["filename"] = n["filename"] or job["filename"]
    for job in jobs.values():
        job["period"] = _period_text(job["period"])
    request_ids = {job_id: i for i, job_id in enumerate(jobs, start=1)}
    _insert(conn, "requests", [{"id": request_ids[j], **v} for j, v in jobs.items()])

    asked_by = {(r["job_id"], int(r["user_id"])): r for r in asked}
    recipients: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for n in notified:
        key = (n["job_id"], int(n["recipient_user_id"]))
        seen.add(key)
        request = asked_by.get(key)
        recipients.append(
            {
                "id": n["id"],
                "request_id": request_ids[n["job_id"]],
                "user_id": n["recipient_user_id"],
                "subdomain": n["subdomain"],
                "email": n["email"],
                "requested_at": request["requested_at"] if request else n["created_at"],
                "launched": bool(request["launched"]) if request else False,
                **{
                    c: n[c]
                    for c in (
                        "state",
                        "attempts",
                        "next_attempt_at",
                        "lease_until",
                        "last_error",
                        "sent_at",
                        "webhook_sent_at",
                        "email_sent_at",
                    )
                },
            }
        )
    next_id = max((n["id"] for n in notified), default=0) + 1
    for key, r in asked_by.items():
        if key in seen:
            continue
        recipients.append(
            {
                "id": next_id,
                "request_id": request_ids[key[0]],
                "user_id": r["user_id"],
                "subdomain": r["subdomain"],
                "email": None,
                "requested_at": r["requested_at"],
                "launched": bool(r["launched"]),
                "state": "waiting",
                "attempts": 0,
                "next_attempt_at": r["requested_at"],
                "lease_until": None,
                "last_error": None,
                "sent_at": None,
                "webhook_sent_at": None,
                "email_sent_at": None,
            }
        )
        next_id += 1
    _insert(conn, "recipients", recipients)

    claims = [
        {
            "cache_key": c["cache_key"],
            "claim_id": c["owner"],
            "owner": c["owner"],
            "run_id": c["run_id"],
            "created_at": c["created_at"],
            "lease_until": c["created_at"],
        }
        for c in _rows(conn, "inflight", "cache_key")
        if c["run_id"]
    ]
    if claims:
        table = sa.Table("inflight_v2", sa.MetaData(), autoload_with=conn)
        conn.execute(sa.insert(table), claims)


def upgrade() -> None:
    _create_new_tables()
    _carry_rows_over(op.get_bind())
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_report_requests_user", table_name="report_requests")
    op.drop_table("report_requests")
    op.drop_table("inflight")
    op.rename_table("inflight_v2", "inflight")


def downgrade() -> None:
    raise NotImplementedError("the ledger cannot be split back into report_requests + notifications")
