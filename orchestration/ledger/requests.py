"""Requests and their recipients: who asked for which job, how the job ended, each user's history.

A request row is one job (a Dagster run, or a cache hit ``cache:<cache_key>:<uuid>``,
``kind = 'cache'``, with the file it was served); a recipient row is one user who
asked for it. A requester of a job still running is ``waiting``; :meth:`Requests.complete_job`
records how the job ended and makes its recipients deliverable (``pending``), which is
what the delivery sensor, the run-end hook and the API (a run it saw finish) all call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assets.contract import TAG_CLAIM, ProducedFile
from orchestration.ledger.files import KnownFile
from orchestration.ledger.records import JOB_ID, LEDGER, Asked, Asker, add_recipient, bind_claim, request_id
from orchestration.ledger.retry import retry_once
from orchestration.ledger.schema import recipients, requests

JobStatus = Literal["succeeded", "failed"]
#: How a job ended: (status, storage_key, filename); the file only for a success.
Outcome = tuple[JobStatus, str | None, str | None]

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


def job_outcome(run_succeeded: bool, tags: Mapping[str, str]) -> Outcome:
    """(status, storage_key, filename) of a finished run, from its ``lxp/*`` tags.

    One rule for the delivery sensor and the API: a run counts as succeeded only
    when it also recorded its file, so a succeeded notification always has a link.
    """
    produced = ProducedFile.from_run_tags(tags)
    if run_succeeded and produced is not None:
        return "succeeded", produced.storage_key, produced.filename
    return "failed", None, None


def claim_of(tags: Mapping[str, str]) -> str | None:
    """The ledger claim a run was launched for (None for runs the API did not launch)."""
    return tags.get(TAG_CLAIM) or None


def check_outcome(status_of_job: str, storage_key: str | None, filename: str | None) -> None:
    if status_of_job not in ("succeeded", "failed"):
        raise ValueError(f"status_of_job must be 'succeeded' or 'failed', not {status_of_job!r}")
    if status_of_job == "succeeded" and not (storage_key and filename):
        raise ValueError("a succeeded notification needs storage_key and filename")


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


class Requests:
    """Recording requesters, completing jobs, and reading requests back (history, recipients)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
    ) -> Literal["waiting", "pending"] | None:
        """Record ``asker`` as a recipient of the run ``job_id``, or of the request still launching
        under ``claim_id``: the state they got, None when they already are one.

        ``waiting`` while the job's outcome is unknown; ``pending`` (deliverable) when it is
        already recorded: a colleague who joins after :meth:`complete_job` released the others
        would otherwise wait for a release that may never come (the sensor releases a finished
        run once; the run's hook releases it while Dagster still reports the run running, so the
        API's own re-check of the run sees nothing to settle). The request row is read
        ``FOR SHARE`` so a concurrent ``complete_job`` (which updates that row first) either
        waits for this insert and then releases it with the others, or has committed the
        outcome this read sees. SQLite serializes writers anyway (``BEGIN IMMEDIATE``).
        """
        with self.engine.begin() as conn:
            request = request_id(conn, asked, job_id=job_id, claim_id=claim_id, now=now)
            ended = conn.execute(sa.select(q.status_of_job).where(q.id == request).with_for_update(read=True)).scalar()
            state: Literal["waiting", "pending"] = "waiting" if ended is None else "pending"
            return state if add_recipient(conn, request, asker, state=state, launched=launched, now=now) else None

    @retry_once
    def record_cache_hit(
        self, asked: Asked, asker: Asker, job_id: str, file: KnownFile, now: datetime | None = None
    ) -> bool:
        """A request answered from cache: its own job, succeeded, its recipient ``pending`` at once."""
        outcome = {"status_of_job": "succeeded", "storage_key": file.storage_key, "filename": file.filename}
        with self.engine.begin() as conn:
            request = request_id(conn, asked, job_id=job_id, now=now, outcome={**outcome, "rows": file.rows})
            return add_recipient(conn, request, asker, state="pending", now=now)

    @retry_once
    def complete_job(
        self, job_id: str, outcome: Outcome, *, claim_id: str | None = None, now: datetime | None = None
    ) -> int:
        """Record how a run ended (``outcome``, as :func:`job_outcome` reads it) and release its
        ``waiting`` recipients for delivery; returns how many.

        ``claim_id`` (the run's claim tag) first binds a request whose launcher
        died before publishing the run id, so its requesters are told too.
        Idempotent (one transaction; only ``waiting`` rows and an unset outcome
        are touched), so the sensor, the hook and the API may all call it.
        """
        status_of_job, storage_key, filename = outcome
        check_outcome(status_of_job, storage_key, filename)
        with self.engine.begin() as conn:
            if claim_id:
                bind_claim(conn, claim_id, job_id)
            request = conn.execute(sa.select(q.id).where(q.job_id == job_id)).scalar()
            if request is None:
                return 0
            conn.execute(
                sa.update(requests)
                .where(q.id == request, q.status_of_job.is_(None))
                .values(
                    status_of_job=status_of_job,
                    storage_key=storage_key if status_of_job == "succeeded" else None,
                    filename=filename,
                )
            )
            return conn.execute(
                sa.update(recipients).where(r.request_id == request, r.state == "waiting").values(state="pending")
            ).rowcount

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
