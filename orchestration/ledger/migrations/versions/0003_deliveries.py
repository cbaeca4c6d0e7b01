"""Deliveries per (recipient, channel): a new channel is rows, not columns.

Before, a recipient row carried one delivery state for all channels, plus one
``<channel>_sent_at`` column per channel. This revision moves the delivery
state into ``deliveries`` (one row per recipient and channel, each with its own
state, attempts, next attempt, lease, last error and sent time) and leaves the
recipient with where it stands: ``waiting`` (job running), ``pending``
(deliverable, not routed to channels yet), ``routed`` or ``unreachable``.

Existing rows keep their meaning: a recipient still ``pending`` that no channel
has tried yet stays ``pending`` (the next delivery pass routes it to the
channels enabled then, as before); any other recipient that left ``waiting``
gets a ``sent`` delivery for each channel stamped ``<channel>_sent_at``, and,
unless it was ``sent``, one delivery per channel still owed (webhook; e-mail
when it has an address) with its state, attempts, next attempt, lease and last
error, so nothing queued, leased, sent or dead is lost or sent again.

Downgrade folds the webhook and e-mail deliveries back into the columns
(a recipient is ``sent`` when all its deliveries are, ``sending`` when one is,
``pending`` when one is, else ``dead``); deliveries of any other channel are
dropped with the table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0003", "0002"

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OLD_CHANNELS = ("webhook", "email")
#: The delivery state that moves from recipients (per row) to deliveries (per channel): (name, type, nullable).
_STATE_COLUMNS: list[tuple[str, Any, bool]] = [
    ("attempts", sa.Integer(), False),
    ("next_attempt_at", sa.DateTime(), False),
    ("lease_until", sa.DateTime(), True),
    ("last_error", sa.Text(), True),
    ("sent_at", sa.DateTime(), True),
]
_STAMPS: list[tuple[str, Any, bool]] = [(f"{channel}_sent_at", sa.DateTime(), True) for channel in _OLD_CHANNELS]


def _table(conn: sa.Connection, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), autoload_with=conn)


def _deliveries_of(row: Any) -> list[dict[str, Any]]:
    """The delivery rows one old recipient row stands for (frozen rule, see the module docstring)."""
    stamps = {channel: getattr(row, f"{channel}_sent_at") for channel in _OLD_CHANNELS}
    if row.state == "waiting" or (row.state == "pending" and row.attempts == 0 and not any(stamps.values())):
        return []
    found = []
    for channel in _OLD_CHANNELS:
        common = {"recipient_id": row.id, "channel": channel, "next_attempt_at": row.next_attempt_at,
                  "lease_until": None, "last_error": None, "sent_at": None}  # fmt: skip
        if stamps[channel] is not None:
            found.append({**common, "state": "sent", "attempts": row.attempts, "sent_at": stamps[channel]})
        elif row.state != "sent" and (channel != "email" or row.email):
            owed = {"state": row.state, "attempts": row.attempts, "lease_until": row.lease_until}
            found.append({**common, **owed, "last_error": row.last_error})
    return found


def upgrade() -> None:
    conn = op.get_bind()
    old = _table(conn, "recipients")
    rows, states = [], {}
    for row in conn.execute(sa.select(old).order_by(old.c.id)):
        mine = _deliveries_of(row)
        rows += mine
        if row.state != "waiting" and (mine or row.state != "pending"):
            states[row.id] = "routed" if mine or row.state == "sent" else "unreachable"
    # The recipients first: SQLite rebuilds the table, which would cascade to deliveries already there.
    with op.batch_alter_table("recipients") as batch:
        batch.drop_index("ix_recipients_due")
        batch.drop_constraint("ck_recipients_state", type_="check")
        for name, _, _ in (*_STATE_COLUMNS, *_STAMPS):
            batch.drop_column(name)
    recipients = _table(conn, "recipients")
    for state in ("routed", "unreachable"):
        ids = [id_ for id_, s in states.items() if s == state]
        for start in range(0, len(ids), 500):
            conn.execute(sa.update(recipients).where(recipients.c.id.in_(ids[start : start + 500])).values(state=state))
    with op.batch_alter_table("recipients") as batch:
        batch.create_check_constraint("ck_recipients_state", "state IN ('waiting', 'pending', 'routed', 'unreachable')")
        batch.create_index("ix_recipients_state", ["state"])
    fk = sa.ForeignKey("recipients.id", name="fk_deliveries_recipient", ondelete="CASCADE")
    per_channel: list[tuple[str, Any, bool]] = [
        ("channel", sa.String(32), False),
        ("state", sa.String(16), False),
        *_STATE_COLUMNS,
    ]
    op.create_table(
        "deliveries",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("recipient_id", _Id, fk, nullable=False),
        *(sa.Column(name, type_, nullable=nullable) for name, type_, nullable in per_channel),
        sa.UniqueConstraint("recipient_id", "channel", name="uq_deliveries_recipient_channel"),
        sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'dead')", name="ck_deliveries_state"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
    if rows:
        conn.execute(sa.insert(_table(conn, "deliveries")), rows)


def _folded(recipient: Any, rows: list[Any]) -> dict[str, Any]:
    """The old columns of one recipient from its webhook/e-mail deliveries."""
    values: dict[str, Any] = {"attempts": 0, "next_attempt_at": recipient.requested_at}
    values |= {f"{c}_sent_at": next((x.sent_at for x in rows if x.channel == c and x.state == "sent"), None)
               for c in _OLD_CHANNELS}  # fmt: skip
    if recipient.state in ("waiting", "pending"):
        return {**values, "state": recipient.state}
    if recipient.state == "unreachable" or not rows:
        unreachable = recipient.state == "unreachable"
        return {**values, "state": "dead" if unreachable else "sent",
                "last_error": "no enabled channel can reach this recipient" if unreachable else None}  # fmt: skip
    owed = [x for x in rows if x.state != "sent"]
    states = {x.state for x in owed}
    state = "sent" if not owed else next(s for s in ("sending", "pending", "dead") if s in states)
    values |= {"state": state, "attempts": max(x.attempts for x in rows)}
    if owed:
        errors = dict.fromkeys(x.last_error for x in owed if x.last_error)
        values |= {"next_attempt_at": min(x.next_attempt_at for x in owed),
                   "lease_until": max((x.lease_until for x in owed if x.lease_until), default=None),
                   "last_error": "; ".join(errors) or None}  # fmt: skip
    else:
        values["sent_at"] = max(x.sent_at for x in rows)
    return values


def downgrade() -> None:
    conn = op.get_bind()
    deliveries = _table(conn, "deliveries")
    by_recipient: dict[int, list[Any]] = {}
    kept = deliveries.c.channel.in_(_OLD_CHANNELS)
    for row in conn.execute(sa.select(deliveries).where(kept).order_by(deliveries.c.id)):
        by_recipient.setdefault(row.recipient_id, []).append(row)
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.drop_table("deliveries")  # first: SQLite's rebuild of recipients would cascade to it
    with op.batch_alter_table("recipients") as batch:
        batch.drop_index("ix_recipients_state")
        batch.drop_constraint("ck_recipients_state", type_="check")
        for name, type_, _ in (*_STATE_COLUMNS, *_STAMPS):  # filled below, then made NOT NULL where they were
            batch.add_column(sa.Column(name, type_, nullable=True))
    recipients = _table(conn, "recipients")
    for recipient in conn.execute(sa.select(recipients)).all():
        values = _folded(recipient, by_recipient.get(recipient.id, []))
        conn.execute(sa.update(recipients).where(recipients.c.id == recipient.id).values(**values))
    with op.batch_alter_table("recipients") as batch:
        batch.alter_column("attempts", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("next_attempt_at", existing_type=sa.DateTime(), nullable=False)
        batch.create_check_constraint(
            "ck_recipients_state", "state IN ('waiting', 'pending', 'sending', 'sent', 'dead')"
        )
        batch.create_index("ix_recipients_due", ["state", "next_attempt_at"])
