"""Deliveries: one row per (recipient, channel), leased, sent, retried and settled on its own.

A recipient (who asked for which job) becomes deliverable (``pending``) when its
job ends. The delivery loop (``orchestration.delivery.deliver``) *routes* it —
one delivery row per enabled channel that can reach that person
(:meth:`Deliveries.route`; ``unreachable`` when none can) — then leases due
delivery rows, sends each on its channel and settles it. Channels are names
here: a new channel adds rows, never columns, so the ledger does not change
when one is added.

Guarantees:

* exactly one row per ``(job, recipient, channel)`` (unique constraint; routing
  again is a no-op), so a sensor tick that runs twice cannot notify twice;
* nothing is lost — a worker that crashes after leasing leaves its row
  ``sending`` with an expired lease, and the next claim picks it up again;
* a re-send after a crash carries the same ``idempotency_key`` (per job and
  recipient), so receivers can drop the duplicate;
* a channel that failed is retried alone (its own attempts, backoff and
  ``last_error``); one that succeeded is never sent again.

SQLite takes the write lock up front (``BEGIN IMMEDIATE``, see
:mod:`orchestration.ledger.engine`) so several processes can claim safely;
PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so claimers never wait on each other.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orchestration.ledger.records import JOB_ID, LEDGER, aware, insert_ignoring_conflict, naive_utc
from orchestration.ledger.requests import JobStatus
from orchestration.ledger.schema import deliveries, recipients, requests

State = Literal["waiting", "pending", "sending", "sent", "dead"]
STATES: tuple[State, ...] = ("waiting", "pending", "sending", "sent", "dead")

MAX_RETRY_DELAY_SECONDS = 6 * 3600.0
#: Recipients routed per transaction.
ROUTE_BATCH = 200
UNREACHABLE = "no enabled channel can reach this recipient"


def idempotency_key(job_id: str, recipient_user_id: int) -> str:
    """Stable per (job, recipient): every attempt on every channel sends the same key."""
    return hashlib.sha256(f"{job_id}:{recipient_user_id}".encode()).hexdigest()


r, q, d = recipients.c, requests.c, deliveries.c
DELIVERIES = deliveries.join(LEDGER, d.recipient_id == r.id)
# What a channel addresses: the recipient row + its request, under the notification's field names.
RECIPIENT_COLUMNS = (
    r.id.label("recipient_id"),
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
)
NOTIFICATION_COLUMNS = (
    *RECIPIENT_COLUMNS,
    d.id,
    d.channel,
    d.state,
    d.attempts,
    d.next_attempt_at,
    d.lease_until,
    d.last_error,
    d.sent_at,
)


def _values(cls: type, row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = aware(value)
    values["cached"] = bool(values["cached"])
    values["recipient_user_id"] = int(values["recipient_user_id"])
    values["institution_id"] = int(values["institution_id"])
    return {f.name: values.get(f.name) for f in fields(cls)}


@dataclass(frozen=True)
class Recipient:
    """One requester of one job, as a channel addresses them."""

    recipient_id: int
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

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.job_id, self.recipient_user_id)

    @classmethod
    def from_row(cls, row: Any) -> Recipient:
        return cls(**_values(cls, row))


@dataclass(frozen=True)
class Notification(Recipient):
    """One delivery: a recipient on one channel, with that channel's own state.

    Listed before it is routed (job still running, or waiting for a delivery
    pass) a notification has no row of its own yet: ``id`` and ``channel`` are
    None and ``state`` is the recipient's (``waiting``, ``pending``, or
    ``dead`` when no channel could reach them).
    """

    id: int | None
    channel: str | None
    state: State
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    last_error: str | None
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Notification:
        return cls(**_values(cls, row))


#: Which channels a recipient gets a delivery on (the enabled ones that can reach them).
Router = Callable[[Recipient], Sequence[str]]


@dataclass(frozen=True)
class Routed:
    recipients: int = 0
    unreachable: int = 0


def _of_job(job_id: str) -> Any:
    return r.request_id.in_(sa.select(q.id).where(q.job_id == job_id))


class Deliveries:
    """Routing, leasing, sending state and operator views of the notifications (SQLAlchemy Core)."""

    def __init__(self, engine: Engine, *, max_attempts: int = 8, backoff_seconds: float = 5.0) -> None:
        self.engine = engine
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds

    # -- routing -------------------------------------------------------------

    def route(self, router: Router, now: datetime, *, job_id: str | None = None) -> Routed:
        """Give every ``pending`` recipient (of ``job_id``, or all) one delivery row per channel
        ``router`` names, due at once; a recipient no channel can reach is ``unreachable``.

        Each batch is one transaction that flips the recipients it routes, so two
        routers (the sensor and a fast path) never route one twice; inserting a
        row that exists is a no-op anyway.
        """
        moment = naive_utc(now)
        routed, unreachable = 0, 0
        while True:
            with self.engine.begin() as conn:
                pick = sa.select(r.id).where(r.state == "pending", *([_of_job(job_id)] if job_id else []))
                picked = pick.order_by(r.id).limit(ROUTE_BATCH).with_for_update(skip_locked=True)
                ids = builtins.list(conn.execute(picked).scalars())
                if not ids:
                    return Routed(routed, unreachable)
                query = sa.select(*RECIPIENT_COLUMNS).select_from(LEDGER).where(r.id.in_(ids)).order_by(r.id)
                for row in conn.execute(query).all():
                    recipient = Recipient.from_row(row)
                    channels = builtins.list(dict.fromkeys(router(recipient)))
                    for channel in channels:
                        insert_ignoring_conflict(
                            conn,
                            deliveries,
                            {
                                "recipient_id": recipient.recipient_id,
                                "channel": channel,
                                "state": "pending",
                                "attempts": 0,
                                "next_attempt_at": moment,
                            },
                        )
                    state = "routed" if channels else "unreachable"
                    conn.execute(
                        sa.update(recipients)
                        .where(r.id == recipient.recipient_id, r.state == "pending")
                        .values(state=state)
                    )
                    routed += 1
                    unreachable += not channels

    # -- delivery ------------------------------------------------------------

    def _notifications(self, conn: sa.Connection, *where: Any, limit: int | None = None) -> builtins.list[Notification]:
        query = sa.select(*NOTIFICATION_COLUMNS).select_from(DELIVERIES).where(*where)
        if limit is not None:
            query = query.order_by(d.id.desc()).limit(limit)
        else:
            query = query.order_by(d.next_attempt_at, d.id)
        return [Notification.from_row(row) for row in conn.execute(query)]

    def claim_due(
        self, now: datetime, limit: int = 50, lease_seconds: float = 300.0, *, channels: Collection[str] | None = None
    ) -> builtins.list[Notification]:
        """Atomically lease up to ``limit`` delivery rows that are due, for one worker.

        Due means ``pending`` with ``next_attempt_at <= now``, or ``sending``
        whose lease has run out (its worker died mid-delivery). A recovered row
        counts as one failed attempt so a row that crashes its worker every time
        ends up dead instead of looping forever. ``channels``: only rows of
        these channels (those this worker can send); others wait.
        """
        return self._claim(now, limit, lease_seconds, channels)

    def claim_job_due(
        self,
        job_id: str,
        now: datetime,
        limit: int = 50,
        lease_seconds: float = 300.0,
        *,
        channels: Collection[str] | None = None,
    ) -> builtins.list[Notification]:
        """:meth:`claim_due` restricted to the rows of one job (the fast path of the run
        that stored the file, or of the API request that found it in the cache).

        Same lease, same states: a row leased here is ``sending`` and invisible to
        the delivery sensor's :meth:`claim_due` until its lease runs out, and the
        other way round, so each row is sent by exactly one of them.
        """
        return self._claim(
            now, limit, lease_seconds, channels, d.recipient_id.in_(sa.select(r.id).where(_of_job(job_id)))
        )

    def has_undelivered(self, job_id: str, claim_id: str | None = None) -> bool:
        """Whether any recipient of the job (or of its launch claim) is still ``waiting``
        or ``pending`` (not routed yet), or has a delivery still ``pending``: indexed
        look-ups, so a run nobody asked for (a backfill batch) pays next to nothing
        before skipping the fast path."""
        of_request = q.job_id == job_id if not claim_id else sa.or_(q.job_id == job_id, q.claim_id == claim_id)
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(r.id).select_from(LEDGER).where(of_request, r.state.in_(("waiting", "pending"))).limit(1)
            ).first()
            if found is None:
                found = conn.execute(
                    sa.select(d.id).select_from(DELIVERIES).where(of_request, d.state == "pending").limit(1)
                ).first()
        return found is not None

    def _claim(
        self, now: datetime, limit: int, lease_seconds: float, channels: Collection[str] | None, *where: Any
    ) -> builtins.list[Notification]:
        moment = naive_utc(now)
        lease = moment + timedelta(seconds=lease_seconds)
        due = sa.or_(
            sa.and_(d.state == "pending", d.next_attempt_at <= moment),
            sa.and_(d.state == "sending", d.lease_until <= moment),
        )
        if channels is not None:
            where = (*where, d.channel.in_(builtins.list(channels)))
        pick = (
            sa.select(d.id, d.state, d.attempts)
            .where(due, *where)
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(pick).all()
            fresh = [row.id for row in rows if row.state == "pending"]
            recovered = [row for row in rows if row.state == "sending"]
            if fresh:
                conn.execute(sa.update(deliveries).where(d.id.in_(fresh)).values(state="sending", lease_until=lease))
            claimed = builtins.list(fresh)
            for row in recovered:
                attempts = row.attempts + 1
                if attempts >= self.max_attempts:
                    conn.execute(
                        sa.update(deliveries)
                        .where(d.id == row.id)
                        .values(
                            state="dead",
                            attempts=attempts,
                            lease_until=None,
                            last_error="lease expired (worker lost) on last attempt",
                        )
                    )
                    continue
                conn.execute(
                    sa.update(deliveries)
                    .where(d.id == row.id)
                    .values(
                        state="sending", attempts=attempts, lease_until=lease, last_error="lease expired (worker lost)"
                    )
                )
                claimed.append(row.id)
            if not claimed:
                return []
            return self._notifications(conn, d.id.in_(claimed))

    def release(self, ids: Sequence[int], now: datetime) -> int:
        """Hand leased rows back untouched (no attempt spent), e.g. when a tick runs out of time."""
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(deliveries)
                .where(d.id.in_(builtins.list(ids)), d.state == "sending")
                .values(state="pending", lease_until=None, next_attempt_at=naive_utc(now))
            ).rowcount

    def mark_sent(self, id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(d.id == id, d.state != "sent")
                .values(state="sent", sent_at=naive_utc(now), lease_until=None, last_error=None)
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
            row = conn.execute(sa.select(d.state, d.attempts).where(d.id == id).with_for_update()).first()
            if row is None:
                raise KeyError(id)
            if row.state != "sending":
                current: State = row.state
                return current
            attempts = row.attempts + 1
            moment = naive_utc(now)
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
                sa.update(deliveries)
                .where(d.id == id)
                .values(
                    state=state, attempts=attempts, next_attempt_at=next_at, lease_until=None, last_error=error[:4000]
                )
            )
            return state

    # -- operations ----------------------------------------------------------

    def retry(self, id: int, now: datetime | None = None) -> bool:
        """Send a dead (or backing-off) delivery again now, with a fresh attempt budget."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(deliveries)
                .where(d.id == id, d.state.in_(("dead", "pending")))
                .values(state="pending", attempts=0, next_attempt_at=naive_utc(now), lease_until=None)
            )
            return result.rowcount == 1

    def get(self, id: int) -> Notification | None:
        with self.engine.begin() as conn:
            found = self._notifications(conn, d.id == id)
        return found[0] if found else None

    def list(
        self,
        status: State | Sequence[State] | None = None,
        limit: int = 100,
        *,
        job_id: str | None = None,
        recipient_user_id: int | None = None,
    ) -> builtins.list[Notification]:
        """Newest first, optionally filtered by state(s), job or recipient: the delivery rows, and the
        recipients not routed yet (``waiting``/``pending``, or ``dead`` when no channel could reach them)."""
        wanted: set[str] | None = None if status is None else ({status} if isinstance(status, str) else set(status))
        where: builtins.list[Any] = []
        if job_id is not None:
            where.append(q.job_id == job_id)
        if recipient_user_id is not None:
            where.append(r.user_id == int(recipient_user_id))
        with self.engine.begin() as conn:
            rows = self._notifications(conn, *where, *([d.state.in_(wanted)] if wanted else []), limit=limit)
            unrouted = self._unrouted(conn, wanted, *where, limit=limit)
        merged = sorted(rows + unrouted, key=lambda n: (n.recipient_id, n.id or 0), reverse=True)
        return merged[:limit]

    def _unrouted(
        self, conn: sa.Connection, wanted: set[str] | None, *where: Any, limit: int
    ) -> builtins.list[Notification]:
        shown = {"waiting": "waiting", "pending": "pending", "unreachable": "dead"}
        states = [s for s, as_state in shown.items() if wanted is None or as_state in wanted]
        if not states:
            return []
        query = (
            sa.select(*RECIPIENT_COLUMNS, r.state)
            .select_from(LEDGER)
            .where(r.state.in_(states), *where)
            .order_by(r.id.desc())
            .limit(limit)
        )
        found = []
        for row in conn.execute(query):
            recipient = Recipient.from_row(row)
            unreachable = row.state == "unreachable"
            found.append(
                Notification(
                    **{f.name: getattr(recipient, f.name) for f in fields(Recipient)},
                    id=None,
                    channel=None,
                    state=shown[row.state],  # type: ignore[arg-type]
                    attempts=0,
                    next_attempt_at=recipient.created_at,
                    lease_until=None,
                    last_error=UNREACHABLE if unreachable else None,
                    sent_at=None,
                )
            )
        return found

    def counts(self) -> dict[str, int]:
        """Notifications per state, for metrics and the operator: delivery rows by state, plus the
        recipients not routed yet (``waiting``, ``pending``) and those no channel reaches (``dead``)."""
        with self.engine.begin() as conn:
            found: dict[str, int] = {
                state: int(n) for state, n in conn.execute(sa.select(d.state, sa.func.count()).group_by(d.state))
            }
            for state, n in conn.execute(
                sa.select(r.state, sa.func.count()).where(r.state != "routed").group_by(r.state)
            ):
                as_state = "dead" if state == "unreachable" else state
                found[as_state] = found.get(as_state, 0) + int(n)
        return {state: int(found.get(state, 0)) for state in STATES}
