"""The request side of the ledger: who asked for which job, known files, in-flight claims.

It reads and writes the :mod:`orchestration.ledger` tables shared with the
outbox (``settings.ledger``: one database for every API replica and the
Dagster sensor):

* requests and their recipients — each user's job history, and the people the
  delivery sensor notifies when a run finishes. Cache hits are requests too
  (``kind = 'cache'``, job id ``cache:<cache_key>:<uuid>``, with the file they
  were served).
* ``report_files`` — the newest finished file the API knows for a cache key
  (learned from a Dagster lookup or from a run it launched or joined), so a
  cache hit is answered without asking Dagster; a miss or an expired entry
  falls back to Dagster, which may know a newer file (e.g. a UI run).
* ``inflight`` — at most one claim per cache key: the request currently
  producing that file. A launcher inserts the claim *before* asking Dagster for
  a run and records its requester against the claim at once, so the requester
  is never lost; concurrent identical requests — in any process — find the
  claim and join instead of launching a second run. The launcher holds a short
  liveness lease while it launches (renewed by a heartbeat); a claim whose lease
  ran out without a run id belonged to a launcher that died, and whoever
  notices takes it over (:meth:`RequestsStore.take_over`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orchestration.ledger import migrate
from orchestration.ledger.engine import create_engine
from orchestration.ledger.records import (
    JOB_ID,
    LEDGER,
    Asked,
    Asker,
    add_recipient,
    bind_claim,
    insert_ignoring_conflict,
    naive_utc,
    request_id,
)
from orchestration.ledger.retry import retry_once
from orchestration.ledger.schema import inflight, recipients, report_files, requests

__all__ = ["Asked", "Asker", "Inflight", "KnownFile", "RequestRow", "RequestsStore", "report_files"]

r, q = recipients.c, requests.c

REQUEST_COLUMNS = (
    JOB_ID.label("job_id"),
    r.user_id,
    q.institution_id,
    r.subdomain,
    q.report,
    q.cache_key,
    q.params_json,
    r.requested_at,
    q.kind,
    r.launched,
    q.storage_key,
    q.filename,
    q.rows,
    q.timezone,
    q.period,
)


@dataclass(frozen=True)
class RequestRow:
    """One (job, requester) of the ledger as the API's job endpoints see it."""

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
    """The claim on a cache key: ``claim_id`` names the request, ``owner`` the launcher holding it."""

    cache_key: str
    claim_id: str
    owner: str
    run_id: str | None
    created_at: datetime
    lease_until: datetime

    def orphaned(self, now: datetime | None = None) -> bool:
        """No run id and the launcher stopped renewing its lease: it died mid-launch."""
        return self.run_id is None and self.lease_until < (now or datetime.now(UTC))


class RequestsStore:
    """Recipients, history, known files and in-flight claims (SQLite or PostgreSQL)."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self._own_engine = engine is None
        self.engine = engine if engine is not None else create_engine(url)

    @classmethod
    def from_settings(cls, settings: Any, *, engine: Engine | None = None) -> RequestsStore:
        return cls(settings.ledger, engine=engine)

    def create_schema(self) -> None:
        """Migrate the ledger to the current schema (idempotent, safe from several processes)."""
        migrate.upgrade(self.engine)

    def dispose(self) -> None:
        if self._own_engine:
            self.engine.dispose()

    # -- requests and recipients ---------------------------------------------

    @retry_once
    def add_requester(
        self,
        asked: Asked,
        asker: Asker,
        *,
        job_id: str | None = None,
        claim_id: str | None = None,
        launched: bool = False,
        now: datetime | None = None,
    ) -> bool:
        """Record ``asker`` as a recipient (notification ``waiting``) of the run ``job_id``,
        or of the request still launching under ``claim_id``; False when they already are one."""
        with self.engine.begin() as conn:
            request = request_id(conn, asked, job_id=job_id, claim_id=claim_id, now=now)
            return add_recipient(conn, request, asker, state="waiting", launched=launched, now=now)

    @retry_once
    def record_cache_hit(
        self, asked: Asked, asker: Asker, job_id: str, file: KnownFile, now: datetime | None = None
    ) -> None:
        """A request answered from cache: its own job, succeeded, notification ``pending`` at once."""
        outcome = {"status_of_job": "succeeded", "storage_key": file.storage_key, "filename": file.filename}
        with self.engine.begin() as conn:
            request = request_id(conn, asked, job_id=job_id, now=now, outcome={**outcome, "rows": file.rows})
            add_recipient(conn, request, asker, state="pending", now=now)

    @retry_once
    def recipients(self, job_id: str) -> list[RequestRow]:
        """Everybody to notify when ``job_id`` finishes, first requester first."""
        return self._requests(q.job_id == job_id, order=(r.requested_at, r.user_id))

    @retry_once
    def claim_recipients(self, claim_id: str) -> list[RequestRow]:
        """Everybody recorded for a request still launching under ``claim_id``."""
        return self._requests(q.claim_id == claim_id, order=(r.requested_at, r.user_id))

    @retry_once
    def request_of(self, job_id: str, user_id: int, institution_id: int) -> RequestRow | None:
        """This user's request for the job, if any (tenant and user scoped)."""
        rows = self._requests(
            q.job_id == job_id, r.user_id == int(user_id), q.institution_id == int(institution_id), order=()
        )
        return rows[0] if rows else None

    @retry_once
    def history(
        self, user_id: int, institution_id: int, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[RequestRow], int]:
        """A user's requests, newest first, and their total count (launches never bound to a run are left out)."""
        where = (r.user_id == int(user_id), q.institution_id == int(institution_id), q.job_id.is_not(None))
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(LEDGER).where(*where)).scalar_one()
        rows = self._requests(*where, order=(r.requested_at.desc(), q.job_id.desc()), limit=limit, offset=offset)
        return rows, int(total)

    def _requests(
        self, *where: Any, order: tuple[Any, ...], limit: int | None = None, offset: int = 0
    ) -> list[RequestRow]:
        query = sa.select(*REQUEST_COLUMNS).select_from(LEDGER).where(*where).order_by(*order)
        if limit is not None:
            query = query.limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [RequestRow.from_row(row) for row in conn.execute(query)]

    # -- report_files --------------------------------------------------------

    @retry_once
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

    @retry_once
    def remember_file(self, file: KnownFile) -> None:
        """Keep ``file`` for its cache key unless a newer one is already known."""
        c = report_files.c
        values = dict(
            cache_key=file.cache_key,
            storage_key=file.storage_key,
            filename=file.filename,
            rows=file.rows,
            produced_at=naive_utc(file.produced_at),
            run_id=file.run_id,
        )
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(report_files)
                .where(c.cache_key == file.cache_key, c.produced_at <= values["produced_at"])
                .values(**values)
            ).rowcount
            if updated == 0:
                # Either a newer file is known (nothing to do) or none is: insert, and if
                # another process remembered one at the same moment, either is a valid file.
                insert_ignoring_conflict(conn, report_files, values)

    # -- inflight ------------------------------------------------------------

    def claim(
        self, cache_key: str, now: datetime | None = None, *, lease_seconds: float = 10.0
    ) -> tuple[Inflight | None, Inflight | None]:
        """Try to become the launcher for ``cache_key``.

        Returns ``(mine, None)`` when this caller now holds the claim (a new
        ``claim_id``, lease ``lease_seconds``) and must launch, or
        ``(None, existing)`` when somebody else holds it.
        """
        moment = naive_utc(now)
        claim_id = uuid.uuid4().hex
        values = dict(
            cache_key=cache_key,
            claim_id=claim_id,
            owner=claim_id,
            run_id=None,
            created_at=moment,
            lease_until=moment + timedelta(seconds=lease_seconds),
        )

        @retry_once
        def insert() -> bool:
            with self.engine.begin() as conn:
                return insert_ignoring_conflict(conn, inflight, values)

        if insert():
            return _inflight(values), None
        existing = self.get_inflight(cache_key)
        if existing is None:  # released between our insert and read: try again
            return self.claim(cache_key, now, lease_seconds=lease_seconds)
        if existing.claim_id == claim_id:  # our first COMMIT went through but its answer was lost
            return existing, None
        return None, existing

    @retry_once
    def get_inflight(self, cache_key: str) -> Inflight | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(inflight).where(inflight.c.cache_key == cache_key)).first()
        return None if row is None else _inflight(dict(row._mapping))

    @retry_once
    def renew(self, cache_key: str, owner: str, lease_seconds: float, now: datetime | None = None) -> bool:
        """Heartbeat of a launcher still launching: push its lease forward."""
        c = inflight.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(inflight)
                .where(c.cache_key == cache_key, c.owner == owner, c.run_id.is_(None))
                .values(lease_until=naive_utc(now) + timedelta(seconds=lease_seconds))
            )
        return result.rowcount == 1

    def take_over(
        self, claim: Inflight, now: datetime | None = None, *, lease_seconds: float = 10.0
    ) -> Inflight | None:
        """Become the owner of an orphaned claim (no run id, lease expired); None if somebody else was faster."""
        c = inflight.c
        moment = naive_utc(now)
        owner = uuid.uuid4().hex
        lease = moment + timedelta(seconds=lease_seconds)

        @retry_once
        def update() -> int:
            with self.engine.begin() as conn:
                return conn.execute(
                    sa.update(inflight)
                    .where(
                        c.cache_key == claim.cache_key,
                        c.run_id.is_(None),
                        # ``owner``: a retry whose first COMMIT went through but whose answer was lost
                        sa.or_(sa.and_(c.owner == claim.owner, c.lease_until < moment), c.owner == owner),
                    )
                    .values(owner=owner, lease_until=lease)
                ).rowcount

        if update() != 1:
            return None
        return Inflight(claim.cache_key, claim.claim_id, owner, None, claim.created_at, lease.replace(tzinfo=UTC))

    @retry_once
    def set_run(self, cache_key: str, owner: str, run_id: str, claim_id: str | None = None) -> bool:
        """Publish the run id of our claim and bind the claim's request to it, atomically."""
        c = inflight.c
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(inflight).where(c.cache_key == cache_key, c.owner == owner).values(run_id=run_id)
            )
            if claim_id is not None:
                bind_claim(conn, claim_id, run_id)
        return result.rowcount == 1

    @retry_once
    def job_of_claim(self, claim_id: str) -> str | None:
        """The run id the claim's requesters are bound to (None while unbound)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(q.job_id).where(q.claim_id == claim_id)).scalar()

    @retry_once
    def forget_claim(self, claim_id: str) -> int:
        """Drop a request whose launch failed before any run existed (its requesters got the error)."""
        with self.engine.begin() as conn:
            ids = sa.select(q.id).where(q.claim_id == claim_id, q.job_id.is_(None)).scalar_subquery()
            conn.execute(sa.delete(recipients).where(r.request_id == ids))
            return conn.execute(sa.delete(requests).where(q.claim_id == claim_id, q.job_id.is_(None))).rowcount

    @retry_once
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


def _inflight(m: dict[str, Any]) -> Inflight:
    return Inflight(
        m["cache_key"],
        m["claim_id"],
        m["owner"],
        m["run_id"],
        m["created_at"].replace(tzinfo=UTC),
        m["lease_until"].replace(tzinfo=UTC),
    )
