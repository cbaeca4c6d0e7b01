"""The writes and reads several parts of the ledger share, so each fact is written in one place.

A requester is recorded with :func:`add_recipient`: the request row (what was
asked) is created once per job or claim, and the recipient row (who asked,
with their notification's delivery state) once per user. Private to
``orchestration.ledger`` (an import-linter contract): everybody else goes through ``Ledger``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from orchestration.ledger.schema import recipients, requests


def naive_utc(value: datetime | None = None) -> datetime:
    """Aware -> naive UTC (the storage convention); naive values are taken as UTC; None = now."""
    value = value or datetime.now(UTC)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Asked:
    """What a request asks for: the same for every recipient of one job."""

    institution_id: int
    report: str
    cache_key: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    period: str | None = None
    timezone: str | None = None
    kind: str = "run"

    def values(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "institution_id": int(self.institution_id),
            "report": self.report,
            "cache_key": self.cache_key,
            "params_json": json.dumps(dict(self.params), sort_keys=True, ensure_ascii=False, default=str),
            "period": self.period,
            "timezone": self.timezone,
        }


@dataclass(frozen=True)
class Asker:
    """Who asked: one recipient of a job's notification."""

    user_id: int
    subdomain: str
    email: str | None = None


def insert_ignoring_conflict(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when a row was inserted."""
    dialect = conn.dialect.name
    statement: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported ledger database: {dialect}")
    return bool(conn.execute(statement).rowcount == 1)


def request_id(
    conn: sa.Connection,
    asked: Asked,
    *,
    job_id: str | None = None,
    claim_id: str | None = None,
    now: datetime | None = None,
    outcome: Mapping[str, Any] | None = None,
) -> int:
    """The id of the request row for ``job_id`` (or the unbound ``claim_id``), created on first use."""
    if (job_id is None) == (claim_id is None):
        raise ValueError("a request is identified by exactly one of job_id and claim_id")
    where = requests.c.job_id == job_id if job_id is not None else requests.c.claim_id == claim_id
    found = conn.execute(sa.select(requests.c.id).where(where)).scalar()
    if found is not None:
        return int(found)
    insert_ignoring_conflict(
        conn,
        requests,
        {**asked.values(), **(outcome or {}), "job_id": job_id, "claim_id": claim_id, "created_at": naive_utc(now)},
    )
    return int(conn.execute(sa.select(requests.c.id).where(where)).scalar_one())


def add_recipient(
    conn: sa.Connection,
    request: int,
    asker: Asker,
    *,
    state: str,
    launched: bool = False,
    now: datetime | None = None,
) -> bool:
    """Record ``asker`` as a recipient of ``request``; False when they already are one."""
    moment = naive_utc(now)
    return insert_ignoring_conflict(
        conn,
        recipients,
        {
            "request_id": request,
            "user_id": int(asker.user_id),
            "subdomain": asker.subdomain,
            "email": asker.email or None,
            "requested_at": moment,
            "launched": launched,
            "state": state,
        },
    )


def bind_claim(conn: sa.Connection, claim_id: str, job_id: str) -> bool:
    """Give the request launched under ``claim_id`` its run id (once)."""
    result = conn.execute(
        sa.update(requests).where(requests.c.claim_id == claim_id, requests.c.job_id.is_(None)).values(job_id=job_id)
    )
    return result.rowcount == 1


# The job id a recipient is known by: the run id, or ``claim:<id>`` while the launch is unbound.
JOB_ID = sa.func.coalesce(requests.c.job_id, sa.literal("claim:") + requests.c.claim_id)
LEDGER = recipients.join(requests, recipients.c.request_id == requests.c.id)
