"""Who asked for which report job, and which identical job is in flight.

Two tables in the outbox database (``settings.outbox``), shared by every API
replica and the Dagster sensor:

* ``report_requests`` — one row per (job, requester): the recipients the
  sensor notifies when a run finishes, and each user's job history. Cache hits
  are recorded too (``kind = 'cache'``, job id ``cache:<cache_key>:<uuid>``,
  with the file they were served) so history and status cover them.
* ``report_files`` — the newest finished file the API knows for a cache key
  (learned from a Dagster lookup or from a run it launched or joined), so a
  cache hit is answered without asking Dagster; a miss or an expired entry
  falls back to Dagster, which may know a newer file (e.g. a UI run).
* ``inflight`` — at most one row per cache key: the run currently producing
  that file. A launcher inserts the row *before* asking Dagster for a run, so
  concurrent identical requests — in any process — find it and join instead of
  launching a second run. Rows are claimed with a plain primary-key insert
  (the database arbitrates), and a row left behind by a finished run or a
  crashed launcher is replaced by whoever notices it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orchestration.delivery.outbox import _sqlite_engine, engine_url

metadata = sa.MetaData()

report_requests = sa.Table(
    "report_requests",
    metadata,
    sa.Column("job_id", sa.String(255), primary_key=True),
    sa.Column("user_id", sa.BigInteger(), primary_key=True),
    sa.Column("institution_id", sa.BigInteger(), nullable=False),
    sa.Column("subdomain", sa.String(255), nullable=False),
    sa.Column("report", sa.String(100), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=False),
    sa.Column("params_json", sa.Text(), nullable=False),
    sa.Column("requested_at", sa.DateTime(), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False, default="run"),
    sa.Column("launched", sa.Boolean(), nullable=False, default=False),
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

inflight = sa.Table(
    "inflight",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
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


def _naive_utc(value: datetime | None = None) -> datetime:
    value = value or datetime.now(UTC)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class RequestRow:
    job_id: str
    user_id: int
    institution_id: int
    subdomain: str
    report: str
    cache_key: str
    params: dict[str, Any]
    requested_at: datetime
    kind: str
    launched: bool
    storage_key: str | None
    filename: str | None
    rows: int | None
    timezone: str | None
    period: str | None

    @classmethod
    def from_row(cls, row: Any) -> RequestRow:
        m = row._mapping
        return cls(
            job_id=m["job_id"],
            user_id=int(m["user_id"]),
            institution_id=int(m["institution_id"]),
            subdomain=m["subdomain"],
            report=m["report"],
            cache_key=m["cache_key"],
            params=json.loads(m["params_json"] or "{}"),
            requested_at=m["requested_at"].replace(tzinfo=UTC),
            kind=m["kind"],
            launched=bool(m["launched"]),
            storage_key=m["storage_key"],
            filename=m["filename"],
            rows=None if m["rows"] is None else int(m["rows"]),
            timezone=m["timezone"],
            period=m["period"],
        )


@dataclass(frozen=True)
class KnownFile:
    """A finished report file for a cache key (``produced_at`` aware UTC)."""

    cache_key: str
    storage_key: str
    filename: str
    rows: int | None
    produced_at: datetime
    run_id: str


@dataclass(frozen=True)
class Inflight:
    cache_key: str
    owner: str
    run_id: str | None
    created_at: datetime


def _engine(url: str) -> Engine:
    """The outbox's engine setup (same database; psycopg2 URL, SQLite WAL + ``BEGIN IMMEDIATE``),
    with a larger PostgreSQL pool: every API worker thread touches the store."""
    url = engine_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class RequestsStore:
    """Recipients, history and in-flight launches (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)

    @classmethod
    def from_settings(cls, settings: Any) -> RequestsStore:
        return cls(settings.outbox)

    def create_schema(self) -> None:
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:
            inspector = sa.inspect(self.engine)
            if not all(inspector.has_table(t.name) for t in metadata.sorted_tables):
                raise

    def dispose(self) -> None:
        self.engine.dispose()

    # -- report_requests -----------------------------------------------------

    def record(
        self,
        *,
        job_id: str,
        user_id: int,
        institution_id: int,
        subdomain: str,
        report: str,
        cache_key: str,
        params: Mapping[str, Any],
        kind: str = "run",
        launched: bool = False,
        storage_key: str | None = None,
        filename: str | None = None,
        rows: int | None = None,
        timezone: str | None = None,
        period: str | None = None,
        requested_at: datetime | None = None,
    ) -> bool:
        """Add a requester to a job; False when this user already is one."""
        values = dict(
            job_id=job_id,
            user_id=int(user_id),
            institution_id=int(institution_id),
            subdomain=subdomain,
            report=report,
            cache_key=cache_key,
            params_json=json.dumps(dict(params), sort_keys=True, ensure_ascii=False, default=str),
            requested_at=_naive_utc(requested_at),
            kind=kind,
            launched=launched,
            storage_key=storage_key,
            filename=filename,
            rows=rows,
            timezone=timezone,
            period=period,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(report_requests).values(**values))
            return True
        except sa.exc.IntegrityError:
            return False

    def recipients(self, job_id: str) -> list[RequestRow]:
        """Everybody to notify when ``job_id`` finishes, first requester first."""
        t = report_requests.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(report_requests).where(t.job_id == job_id).order_by(t.requested_at, t.user_id)
            ).all()
        return [RequestRow.from_row(r) for r in rows]

    def request_of(self, job_id: str, user_id: int, institution_id: int) -> RequestRow | None:
        """This user's request for the job, if any (tenant and user scoped)."""
        t = report_requests.c
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(report_requests).where(
                    t.job_id == job_id, t.user_id == int(user_id), t.institution_id == int(institution_id)
                )
            ).first()
        return None if row is None else RequestRow.from_row(row)

    def history(
        self, user_id: int, institution_id: int, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[RequestRow], int]:
        """A user's requests, newest first, and their total count."""
        t = report_requests.c
        where = sa.and_(t.user_id == int(user_id), t.institution_id == int(institution_id))
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(report_requests).where(where)).scalar_one()
            rows = conn.execute(
                sa.select(report_requests)
                .where(where)
                .order_by(t.requested_at.desc(), t.job_id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [RequestRow.from_row(r) for r in rows], int(total)

    # -- report_files --------------------------------------------------------

    def known_file(self, cache_key: str) -> KnownFile | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(report_files).where(report_files.c.cache_key == cache_key)).first()
        if row is None:
            return None
        m = row._mapping
        rows = m["rows"]
        return KnownFile(
            m["cache_key"],
            m["storage_key"],
            m["filename"],
            None if rows is None else int(rows),
            m["produced_at"].replace(tzinfo=UTC),
            m["run_id"],
        )

    def remember_file(self, file: KnownFile) -> None:
        """Keep ``file`` for its cache key unless a newer one is already known."""
        c = report_files.c
        values = dict(
            cache_key=file.cache_key,
            storage_key=file.storage_key,
            filename=file.filename,
            rows=file.rows,
            produced_at=_naive_utc(file.produced_at),
            run_id=file.run_id,
        )
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(report_files)
                .where(c.cache_key == file.cache_key, c.produced_at <= values["produced_at"])
                .values(**values)
            ).rowcount
            if (
                updated == 0
                and conn.execute(sa.select(c.cache_key).where(c.cache_key == file.cache_key)).first() is None
            ):
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(report_files).values(**values))
                except sa.exc.IntegrityError:
                    pass  # another process remembered one at the same moment: either is a valid file

    # -- inflight ------------------------------------------------------------

    def claim(self, cache_key: str, now: datetime | None = None) -> tuple[str | None, Inflight | None]:
        """Try to become the launcher for ``cache_key``.

        Returns ``(owner_token, None)`` when this caller now owns the slot and
        must launch, or ``(None, existing)`` when somebody else holds it.
        """
        owner = uuid.uuid4().hex
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(inflight).values(
                        cache_key=cache_key, owner=owner, run_id=None, created_at=_naive_utc(now)
                    )
                )
            return owner, None
        except sa.exc.IntegrityError:
            existing = self.get_inflight(cache_key)
            if existing is None:  # released between our insert and read: try again
                return self.claim(cache_key, now)
            return None, existing

    def get_inflight(self, cache_key: str) -> Inflight | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(inflight).where(inflight.c.cache_key == cache_key)).first()
        if row is None:
            return None
        m = row._mapping
        return Inflight(m["cache_key"], m["owner"], m["run_id"], m["created_at"].replace(tzinfo=UTC))

    def set_run(self, cache_key: str, owner: str, run_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(inflight)
                .where(inflight.c.cache_key == cache_key, inflight.c.owner == owner)
                .values(run_id=run_id)
            )
        return result.rowcount == 1

    def release(self, cache_key: str, *, owner: str | None = None, run_id: str | None = None) -> bool:
        """Drop the slot, but only the one we looked at (owner / run id match)."""
        c = inflight.c
        where = [c.cache_key == cache_key]
        if owner is not None:
            where.append(c.owner == owner)
        if run_id is not None:
            where.append(c.run_id == run_id)
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(inflight).where(*where)).rowcount == 1

    def release_stale_claim(
        self, cache_key: str, owner: str, older_than: timedelta, now: datetime | None = None
    ) -> bool:
        """Drop a claim whose launcher never recorded a run (crashed mid-launch)."""
        c = inflight.c
        limit = _naive_utc(now) - older_than
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(inflight).where(
                    c.cache_key == cache_key, c.owner == owner, c.run_id.is_(None), c.created_at < limit
                )
            )
        return result.rowcount == 1
