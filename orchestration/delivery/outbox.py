"""The notification outbox: one durable row per (job, recipient) to deliver.

Finished runs (success and failure) and cache hits become rows here; a
delivery loop (``orchestration.delivery.deliver``) claims due rows with a lease,
sends them and marks the outcome. That gives the delivery guarantees of SPEC §7:

* exactly one row per ``(job_id, recipient_user_id)`` — enqueueing again is a
  no-op, so a sensor tick that runs twice cannot notify twice;
* nothing is lost — a worker that crashes after claiming leaves the row in
  ``sending`` with an expired lease, and the next claim picks it up again;
* a re-send after a crash carries the same ``idempotency_key`` (and the
  per-channel ``*_sent_at`` stamps stop channels that already succeeded from
  sending again), so receivers can drop the duplicate.

Cache hits: a requester served from cache must get a NEW notification, but the
cached file's original job id is already taken for earlier recipients (and
possibly for this very user). Callers therefore enqueue cache-hit
notifications under a distinct job id: ``cache:<cache_key>:<request uuid>``.

Requesters who join a run that is still queued/running can be recorded with
:meth:`Outbox.subscribe` (state ``waiting``); :meth:`Outbox.complete_job`
releases them when the run ends.

SQLite (default, a file under ``$LXP_HOME``) runs in WAL mode and takes the
write lock up front (``BEGIN IMMEDIATE``) so several processes can claim
safely; PostgreSQL uses ``FOR UPDATE SKIP LOCKED`` so claimers never wait on
each other.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from assets.contract import ProducedFile

State = Literal["waiting", "pending", "sending", "sent", "dead"]
JobStatus = Literal["succeeded", "failed"]
Channel = Literal["webhook", "email"]
CHANNELS: tuple[Channel, ...] = ("webhook", "email")
STATES: tuple[State, ...] = ("waiting", "pending", "sending", "sent", "dead")

metadata = sa.MetaData()
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(255), nullable=False),
    sa.Column("recipient_user_id", sa.BigInteger(), nullable=False),
    sa.Column("institution_id", sa.BigInteger(), nullable=False),
    sa.Column("subdomain", sa.String(255), nullable=False),
    sa.Column("report", sa.String(100), nullable=False),
    sa.Column("status_of_job", sa.String(16), nullable=True),
    sa.Column("cached", sa.Boolean(), nullable=False, default=False),
    sa.Column("storage_key", sa.String(1024), nullable=True),
    sa.Column("filename", sa.String(255), nullable=True),
    sa.Column("period", sa.String(64), nullable=True),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
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


MAX_RETRY_DELAY_SECONDS = 6 * 3600.0


def job_outcome(run_succeeded: bool, tags: Mapping[str, str]) -> tuple[JobStatus, str | None, str | None]:
    """(status, storage_key, filename) of a finished run, from its ``lxp/*`` tags.

    One rule for the delivery sensor and the API: a run counts as succeeded only
    when it also recorded its file, so a succeeded notification always has a link.
    """
    produced = ProducedFile.from_run_tags(tags)
    if run_succeeded and produced is not None:
        return "succeeded", produced.storage_key, produced.filename
    return "failed", None, None


def idempotency_key(job_id: str, recipient_user_id: int) -> str:
    """Stable per (job, recipient): every attempt for a row sends the same key."""
    return hashlib.sha256(f"{job_id}:{recipient_user_id}".encode()).hexdigest()


def _db_time(value: datetime) -> datetime:
    """Aware -> naive UTC (the storage convention); naive values are taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


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
    idempotency_key: str

    @classmethod
    def from_row(cls, row: Any) -> Notification:
        values = dict(row._mapping)
        for f in fields(cls):
            if isinstance(values.get(f.name), datetime):
                values[f.name] = _aware(values[f.name])
        values["cached"] = bool(values["cached"])
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def channel_sent_at(self, channel: Channel) -> datetime | None:
        return self.webhook_sent_at if channel == "webhook" else self.email_sent_at


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of sqlite3's lazy
        # BEGIN, so a claim holds the write lock from its first SELECT.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def engine_url(url: str) -> str:
    """Plain ``postgresql://`` means psycopg2 here (SQLAlchemy 2.1 would pick psycopg 3, not installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


class Outbox:
    """Durable notification queue on SQLite or PostgreSQL (SQLAlchemy Core)."""

    def __init__(self, url: str, *, max_attempts: int = 8, backoff_seconds: float = 5.0) -> None:
        self.url = url = engine_url(url)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.engine = _sqlite_engine(url) if url.startswith("sqlite") else sa.create_engine(url, pool_pre_ping=True)
        self.table = notifications

    @classmethod
    def from_settings(cls, settings: Any) -> Outbox:
        return cls(
            settings.outbox, max_attempts=settings.outbox_max_attempts, backoff_seconds=settings.outbox_backoff_seconds
        )

    def create_schema(self) -> None:
        """Create the table if missing (safe to call from every process at start-up)."""
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Another process created it between our check and CREATE.
            if not sa.inspect(self.engine).has_table(notifications.name):
                raise

    def dispose(self) -> None:
        self.engine.dispose()

    # -- writing -------------------------------------------------------------

    def _insert(self, values: dict[str, Any]) -> bool:
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise RuntimeError(f"unsupported outbox database: {dialect}")
        statement = insert(notifications).values(**values).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def _insert_row(
        self, *, state: State, now: datetime | None, job_id: str, recipient_user_id: int, **values: Any
    ) -> bool:
        """One new notification row: the fields every row shares are set here once."""
        moment = _db_time(now or datetime.now(UTC))
        row = {
            **values,
            "job_id": job_id,
            "recipient_user_id": int(recipient_user_id),
            "institution_id": int(values["institution_id"]),
            "email": values["email"] or None,
            "created_at": moment,
            "state": state,
            "attempts": 0,
            "next_attempt_at": moment,
            "idempotency_key": idempotency_key(job_id, int(recipient_user_id)),
        }
        return self._insert(row)

    def enqueue(
        self,
        *,
        job_id: str,
        recipient_user_id: int,
        institution_id: int,
        subdomain: str,
        report: str,
        status_of_job: JobStatus,
        cached: bool = False,
        storage_key: str | None = None,
        filename: str | None = None,
        period: str | None = None,
        email: str | None = None,
        timezone: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Queue a notification; returns False when (job_id, recipient) was already queued.

        ``job_id`` is the Dagster run id, or ``cache:<cache_key>:<request uuid>``
        for a cache hit (see the module docstring).
        """
        if status_of_job not in ("succeeded", "failed"):
            raise ValueError(f"status_of_job must be 'succeeded' or 'failed', not {status_of_job!r}")
        if status_of_job == "succeeded" and not (storage_key and filename):
            raise ValueError("a succeeded notification needs storage_key and filename")
        return self._insert_row(
            state="pending",
            now=now,
            job_id=job_id,
            recipient_user_id=recipient_user_id,
            institution_id=institution_id,
            subdomain=subdomain,
            report=report,
            status_of_job=status_of_job,
            cached=cached,
            storage_key=storage_key if status_of_job == "succeeded" else None,
            filename=filename,
            period=period,
            email=email,
            timezone=timezone,
        )

    def subscribe(
        self,
        *,
        job_id: str,
        recipient_user_id: int,
        institution_id: int,
        subdomain: str,
        report: str,
        period: str | None = None,
        email: str | None = None,
        timezone: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Record a requester of a run that has not finished yet (state ``waiting``).

        Nothing is sent until :meth:`complete_job` fills in the outcome. Returns
        False when this recipient already has a row for the job.
        """
        return self._insert_row(
            state="waiting",
            now=now,
            job_id=job_id,
            recipient_user_id=recipient_user_id,
            institution_id=institution_id,
            subdomain=subdomain,
            report=report,
            status_of_job=None,
            cached=False,
            period=period,
            email=email,
            timezone=timezone,
        )

    def complete_job(
        self,
        job_id: str,
        status_of_job: JobStatus,
        *,
        storage_key: str | None = None,
        filename: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Release every ``waiting`` row of a finished run for delivery; returns how many."""
        if status_of_job not in ("succeeded", "failed"):
            raise ValueError(f"status_of_job must be 'succeeded' or 'failed', not {status_of_job!r}")
        if status_of_job == "succeeded" and not (storage_key and filename):
            raise ValueError("a succeeded job needs storage_key and filename")
        t = notifications.c
        statement = (
            sa.update(notifications)
            .where(t.job_id == job_id, t.state == "waiting")
            .values(
                status_of_job=status_of_job,
                storage_key=storage_key if status_of_job == "succeeded" else None,
                filename=filename,
                state="pending",
                next_attempt_at=_db_time(now or datetime.now(UTC)),
            )
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount

    # -- delivery ------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int = 50, lease_seconds: float = 300.0) -> builtins.list[Notification]:
        """Atomically lease up to ``limit`` rows that are due, for one worker.

        Due means ``pending`` with ``next_attempt_at <= now``, or ``sending``
        whose lease has run out (its worker died mid-delivery). A recovered row
        counts as one failed attempt so a row that crashes its worker every time
        ends up dead instead of looping forever.
        """
        t = notifications.c
        moment = _db_time(now)
        lease = moment + timedelta(seconds=lease_seconds)
        due = sa.or_(
            sa.and_(t.state == "pending", t.next_attempt_at <= moment),
            sa.and_(t.state == "sending", t.lease_until <= moment),
        )
        pick = (
            sa.select(t.id, t.state, t.attempts)
            .where(due)
            .order_by(t.next_attempt_at, t.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(pick).all()
            fresh = [r.id for r in rows if r.state == "pending"]
            recovered = [r for r in rows if r.state == "sending"]
            if fresh:
                conn.execute(sa.update(notifications).where(t.id.in_(fresh)).values(state="sending", lease_until=lease))
            claimed = list(fresh)
            for r in recovered:
                attempts = r.attempts + 1
                if attempts >= self.max_attempts:
                    conn.execute(
                        sa.update(notifications)
                        .where(t.id == r.id)
                        .values(
                            state="dead",
                            attempts=attempts,
                            lease_until=None,
                            last_error="lease expired (worker lost) on last attempt",
                        )
                    )
                    continue
                conn.execute(
                    sa.update(notifications)
                    .where(t.id == r.id)
                    .values(
                        state="sending", attempts=attempts, lease_until=lease, last_error="lease expired (worker lost)"
                    )
                )
                claimed.append(r.id)
            if not claimed:
                return []
            result = conn.execute(sa.select(notifications).where(t.id.in_(claimed)).order_by(t.next_attempt_at, t.id))
            return [Notification.from_row(row) for row in result]

    def release(self, ids: Sequence[int], now: datetime) -> int:
        """Hand leased rows back untouched (no attempt spent), e.g. when a tick runs out of time."""
        if not ids:
            return 0
        t = notifications.c
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(notifications)
                .where(t.id.in_(list(ids)), t.state == "sending")
                .values(state="pending", lease_until=None, next_attempt_at=_db_time(now))
            ).rowcount

    def mark_channel_sent(self, id: int, channel: Channel, now: datetime) -> None:
        """Stamp one channel as delivered so a later retry of the row skips it."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        column = notifications.c[f"{channel}_sent_at"]
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(notifications)
                .where(notifications.c.id == id, column.is_(None))
                .values({column: _db_time(now)})
            )

    def mark_sent(self, id: int, now: datetime) -> None:
        t = notifications.c
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(notifications)
                .where(t.id == id, t.state != "sent")
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
        t = notifications.c
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(t.state, t.attempts).where(t.id == id).with_for_update()).first()
            if row is None:
                raise KeyError(id)
            if row.state != "sending":
                return row.state
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
                sa.update(notifications)
                .where(t.id == id)
                .values(
                    state=state, attempts=attempts, next_attempt_at=next_at, lease_until=None, last_error=error[:4000]
                )
            )
            return state

    # -- operations ----------------------------------------------------------

    def retry(self, id: int, now: datetime | None = None) -> bool:
        """Send a dead (or backing-off) row again now, with a fresh attempt budget."""
        t = notifications.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(notifications)
                .where(t.id == id, t.state.in_(("dead", "pending")))
                .values(
                    state="pending", attempts=0, next_attempt_at=_db_time(now or datetime.now(UTC)), lease_until=None
                )
            )
            return result.rowcount == 1

    def get(self, id: int) -> Notification | None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(notifications).where(notifications.c.id == id)).first()
        return None if row is None else Notification.from_row(row)

    def list(
        self,
        status: State | Sequence[State] | None = None,
        limit: int = 100,
        *,
        job_id: str | None = None,
        recipient_user_id: int | None = None,
    ) -> builtins.list[Notification]:
        """Newest first, optionally filtered by state(s), job or recipient."""
        t = notifications.c
        query = sa.select(notifications).order_by(t.id.desc()).limit(limit)
        if status is not None:
            query = query.where(t.state.in_([status] if isinstance(status, str) else list(status)))
        if job_id is not None:
            query = query.where(t.job_id == job_id)
        if recipient_user_id is not None:
            query = query.where(t.recipient_user_id == int(recipient_user_id))
        with self.engine.begin() as conn:
            return [Notification.from_row(row) for row in conn.execute(query)]

    def has_recipient(self, job_id: str, user_id: int) -> bool:
        t = notifications.c
        with self.engine.begin() as conn:
            return (
                conn.execute(sa.select(t.id).where(t.job_id == job_id, t.recipient_user_id == int(user_id))).first()
                is not None
            )

    def recipients(self, job_id: str) -> builtins.list[int]:
        t = notifications.c
        with self.engine.begin() as conn:
            return [r[0] for r in conn.execute(sa.select(t.recipient_user_id).where(t.job_id == job_id).order_by(t.id))]

    def counts(self) -> dict[str, int]:
        """Rows per state, for metrics and the operator."""
        t = notifications.c
        with self.engine.begin() as conn:
            found = dict(conn.execute(sa.select(t.state, sa.func.count()).group_by(t.state)).all())
        return {state: int(found.get(state, 0)) for state in STATES}
