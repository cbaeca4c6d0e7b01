"""Deliveries: the notification of one recipient, leased, sent, retried and settled.

A notification is a recipient row (who asked, and the delivery state) joined with
its request (what was asked, how the job ended); nothing is copied between them.
The delivery loop (``orchestration.delivery.deliver``) claims due rows with a
lease, sends them and marks the outcome, which gives the delivery guarantees:

* exactly one row per ``(job_id, recipient_user_id)`` — recording a requester
  again is a no-op, so a sensor tick that runs twice cannot notify twice;
* nothing is lost — a worker that crashes after claiming leaves the row in
  ``sending`` with an expired lease, and the next claim picks it up again;
* a re-send after a crash carries the same ``idempotency_key``, so receivers
  can drop the duplicate.

SQLite takes the write lock up front (``BEGIN IMMEDIATE``, see
:mod:`orchestration.ledger.engine`) so several processes can claim safely;
PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so claimers never wait on each other.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orchestration.ledger.records import JOB_ID, LEDGER, aware, naive_utc
from orchestration.ledger.requests import JobStatus
from orchestration.ledger.schema import recipients, requests

State = Literal["waiting", "pending", "sending", "sent", "dead"]
Channel = Literal["webhook", "email"]
CHANNELS: tuple[Channel, ...] = ("webhook", "email")
STATES: tuple[State, ...] = ("waiting", "pending", "sending", "sent", "dead")

MAX_RETRY_DELAY_SECONDS = 6 * 3600.0


def idempotency_key(job_id: str, recipient_user_id: int) -> str:
    """Stable per (job, recipient): every attempt for a row sends the same key."""
    return hashlib.sha256(f"{job_id}:{recipient_user_id}".encode()).hexdigest()


_db_time = naive_utc
r, q = recipients.c, requests.c
# The notification view: recipient row + its request, under the outbox's field names.
NOTIFICATION_COLUMNS = (
    r.id,
    JOB_ID.label("job_id"),
    r.user_id.label("recipient_user_id"),
    q.institution_id,
    r.subdomain,
    q.report,
    q.status_of_job,
    (q.kind == "cache").label("cached"),
    q.storage_key,
    q.filename,
    q.period,
    r.email,
    q.timezone,
    r.requested_at.label("created_at"),
    r.state,
    r.attempts,
    r.next_attempt_at,
    r.lease_until,
    r.last_error,
    r.sent_at,
    r.webhook_sent_at,
    r.email_sent_at,
)


@dataclass(frozen=True)
class Notification:
    id: int
    job_id: str
    recipient_user_id: int
    institution_id: int
    subdomain: str
    report: str
    status_of_job: JobStatus | None
    cached: bool
    storage_key: str | None
    filename: str | None
    period: str | None  # as the recipient reads it ("06/2026"): RequestedReport.period_text
    email: str | None
    timezone: str | None
    created_at: datetime
    state: State
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    last_error: str | None
    sent_at: datetime | None
    webhook_sent_at: datetime | None
    email_sent_at: datetime | None

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.job_id, self.recipient_user_id)

    @classmethod
    def from_row(cls, row: Any) -> Notification:
        values = dict(row._mapping)
        for f in fields(cls):
            if isinstance(values.get(f.name), datetime):
                values[f.name] = aware(values[f.name])
        values["cached"] = bool(values["cached"])
        values["recipient_user_id"] = int(values["recipient_user_id"])
        values["institution_id"] = int(values["institution_id"])
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def channel_sent_at(self, channel: Channel) -> datetime | None:
        return self.webhook_sent_at if channel == "webhook" else self.email_sent_at


class Deliveries:
    """Leasing, sending state and operator views of the notifications (SQLAlchemy Core)."""

    def __init__(self, engine: Engine, *, max_attempts: int = 8, backoff_seconds: float = 5.0) -> None:
        self.engine = engine
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds

    # -- delivery ------------------------------------------------------------

    def _notifications(self, conn: sa.Connection, *where: Any, limit: int | None = None) -> builtins.list[Notification]:
        query = sa.select(*NOTIFICATION_COLUMNS).select_from(LEDGER).where(*where)
        if limit is not None:
            query = query.order_by(r.id.desc()).limit(limit)
        else:
            query = query.order_by(r.next_attempt_at, r.id)
        return [Notification.from_row(row) for row in conn.execute(query)]

    def claim_due(self, now: datetime, limit: int = 50, lease_seconds: float = 300.0) -> builtins.list[Notification]:
        """Atomically lease up to ``limit`` rows that are due, for one worker.

        Due means ``pending`` with ``next_attempt_at <= now``, or ``sending``
        whose lease has run out (its worker died mid-delivery). A recovered row
        counts as one failed attempt so a row that crashes its worker every time
        ends up dead instead of looping forever.
        """
        return self._claim(now, limit, lease_seconds)

    def claim_job_due(
        self, job_id: str, now: datetime, limit: int = 50, lease_seconds: float = 300.0
    ) -> builtins.list[Notification]:
        """:meth:`claim_due` restricted to the rows of one job (the fast path of the run
        that stored the file, or of the API request that found it in the cache).

        Same lease, same states: a row leased here is ``sending`` and invisible to
        the delivery sensor's :meth:`claim_due` until its lease runs out, and the
        other way round, so each row is sent by exactly one of them.
        """
        return self._claim(now, limit, lease_seconds, r.request_id.in_(sa.select(q.id).where(q.job_id == job_id)))

    def has_undelivered(self, job_id: str, claim_id: str | None = None) -> bool:
        """Whether any recipient of the job (or of its launch claim) is still ``waiting``
        or ``pending``: one indexed look-up, so a run nobody asked for (a backfill
        batch) pays next to nothing before skipping the fast path."""
        of_request = q.job_id == job_id if not claim_id else sa.or_(q.job_id == job_id, q.claim_id == claim_id)
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(r.id).select_from(LEDGER).where(of_request, r.state.in_(("waiting", "pending"))).limit(1)
            ).first()
        return found is not None

    def _claim(self, now: datetime, limit: int, lease_seconds: float, *where: Any) -> builtins.list[Notification]:
        moment = _db_time(now)
        lease = moment + timedelta(seconds=lease_seconds)
        due = sa.or_(
            sa.and_(r.state == "pending", r.next_attempt_at <= moment),
            sa.and_(r.state == "sending", r.lease_until <= moment),
        )
        pick = (
            sa.select(r.id, r.state, r.attempts)
            .where(due, *where)
            .order_by(r.next_attempt_at, r.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(pick).all()
            fresh = [row.id for row in rows if row.state == "pending"]
            recovered = [row for row in rows if row.state == "sending"]
            if fresh:
                conn.execute(sa.update(recipients).where(r.id.in_(fresh)).values(state="sending", lease_until=lease))
            claimed = list(fresh)
            for row in recovered:
                attempts = row.attempts + 1
                if attempts >= self.max_attempts:
                    conn.execute(
                        sa.update(recipients)
                        .where(r.id == row.id)
                        .values(
                            state="dead",
                            attempts=attempts,
                            lease_until=None,
                            last_error="lease expired (worker lost) on last attempt",
                        )
                    )
                    continue
                conn.execute(
                    sa.update(recipients)
                    .where(r.id == row.id)
                    .values(
                        state="sending", attempts=attempts, lease_until=lease, last_error="lease expired (worker lost)"
                    )
                )
                claimed.append(row.id)
            if not claimed:
                return []
            return self._notifications(conn, r.id.in_(claimed))

    def release(self, ids: Sequence[int], now: datetime) -> int:
        """Hand leased rows back untouched (no attempt spent), e.g. when a tick runs out of time."""
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(recipients)
                .where(r.id.in_(list(ids)), r.state == "sending")
                .values(state="pending", lease_until=None, next_attempt_at=_db_time(now))
            ).rowcount

    def mark_channel_sent(self, id: int, channel: Channel, now: datetime) -> None:
        """Stamp one channel as delivered so a later retry of the row skips it."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        column = recipients.c[f"{channel}_sent_at"]
        with self.engine.begin() as conn:
            conn.execute(sa.update(recipients).where(r.id == id, column.is_(None)).values({column: _db_time(now)}))

    def mark_sent(self, id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(recipients)
                .where(r.id == id, r.state != "sent")
                .values(state="sent", sent_at=_db_time(now), lease_until=None, last_error=None)
            )

    def mark_failed(
        self, id: int, error: str, now: datetime, *, permanent: bool = False, retry_after: float | None = None
    ) -> State:
        """Count a failed attempt: back off exponentially, or go ``dead``.

        The delay is ``backoff_seconds * 2**(attempts-1)`` (at least
        ``retry_after`` when the receiver asked for it). ``permanent`` errors
        (e.g. HTTP 4xx) go dead at once. Only a row still ``sending`` is
        touched, so a late failure report cannot undo a success. Returns the
        new state.
        """
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(r.state, r.attempts).where(r.id == id).with_for_update()).first()
            if row is None:
                raise KeyError(id)
            if row.state != "sending":
                current: State = row.state
                return current
            attempts = row.attempts + 1
            moment = _db_time(now)
            if permanent or attempts >= self.max_attempts:
                state: State = "dead"
                next_at = moment
            else:
                state = "pending"
                delay = self.backoff_seconds * 2 ** (attempts - 1)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                # A receiver's Retry-After (or a long backoff) may ask for days or
                # "inf": cap it so a row is never parked out of sight.
                delay = min(delay, MAX_RETRY_DELAY_SECONDS)
                next_at = moment + timedelta(seconds=delay)
            conn.execute(
                sa.update(recipients)
                .where(r.id == id)
                .values(
                    state=state, attempts=attempts, next_attempt_at=next_at, lease_until=None, last_error=error[:4000]
                )
            )
            return state

    # -- operations ----------------------------------------------------------

    def retry(self, id: int, now: datetime | None = None) -> bool:
        """Send a dead (or backing-off) row again now, with a fresh attempt budget."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(recipients)
                .where(r.id == id, r.state.in_(("dead", "pending")))
                .values(
                    state="pending", attempts=0, next_attempt_at=_db_time(now or datetime.now(UTC)), lease_until=None
                )
            )
            return result.rowcount == 1

    def get(self, id: int) -> Notification | None:
        with self.engine.begin() as conn:
            found = self._notifications(conn, r.id == id)
        return found[0] if found else None

    def list(
        self,
        status: State | Sequence[State] | None = None,
        limit: int = 100,
        *,
        job_id: str | None = None,
        recipient_user_id: int | None = None,
    ) -> builtins.list[Notification]:
        """Newest first, optionally filtered by state(s), job or recipient."""
        where: builtins.list[Any] = []
        if status is not None:
            where.append(r.state.in_([status] if isinstance(status, str) else builtins.list(status)))
        if job_id is not None:
            where.append(q.job_id == job_id)
        if recipient_user_id is not None:
            where.append(r.user_id == int(recipient_user_id))
        with self.engine.begin() as conn:
            return self._notifications(conn, *where, limit=limit)

    def counts(self) -> dict[str, int]:
        """Rows per state, for metrics and the operator."""
        with self.engine.begin() as conn:
            found: dict[str, int] = {
                state: int(n) for state, n in conn.execute(sa.select(r.state, sa.func.count()).group_by(r.state))
            }
        return {state: int(found.get(state, 0)) for state in STATES}
