"""In-flight claims: at most one request per cache key is being launched or run.

A launcher inserts the claim *before* asking Dagster for a run and records its
requester against the claim at once (:meth:`Requests.add_requester` with
``claim_id``), so the requester is never lost; concurrent identical requests —
in any process — find the claim and join instead of launching a second run. The
launcher holds a short liveness lease while it launches (renewed by a
heartbeat); a claim whose lease ran out without a run id belonged to a launcher
that died, and whoever notices takes it over (:meth:`Claims.take_over`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orchestration.ledger.records import bind_claim, insert_ignoring_conflict, naive_utc
from orchestration.ledger.retry import retry_once
from orchestration.ledger.schema import inflight, recipients, requests

r, q = recipients.c, requests.c


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


class Claims:
    """Claiming, renewing, taking over, binding and releasing the in-flight claim of a cache key."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
