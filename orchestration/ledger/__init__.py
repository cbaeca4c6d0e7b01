"""The request ledger: who asked for which report job, in-flight claims, known files and notifications.

One database (``Settings.ledger``, ``LXP_LEDGER_URL``: SQLite under ``$LXP_HOME``
or PostgreSQL) shared by every API replica, the Dagster delivery sensor, the
run-end hook and the CLI. This package is the only code that reads or writes
its tables (an import-linter contract keeps ``schema`` and ``records`` private
to it); everybody else goes through :class:`Ledger`:

* ``requests`` — :class:`~orchestration.ledger.requests.Requests`: requesters, job outcomes, history;
* ``claims`` — :class:`~orchestration.ledger.claims.Claims`: the in-flight claim per cache key;
* ``files`` — :class:`~orchestration.ledger.files.Files`: the newest known file per cache key;
* ``deliveries`` — :class:`~orchestration.ledger.deliveries.Deliveries`: notifications' leases and states.

``schema`` holds the tables, ``records`` the writes several parts share,
``engine`` the engine factory, ``migrate`` the Alembic runner and ``retry`` the
one retry of an operation that met a database blip.
"""

from orchestration.ledger.claims import Inflight
from orchestration.ledger.deliveries import Notification, Recipient, idempotency_key
from orchestration.ledger.facade import Ledger
from orchestration.ledger.files import KnownFile
from orchestration.ledger.records import Asked, Asker
from orchestration.ledger.requests import JobStatus, Outcome, RequestRow, claim_of, job_outcome

__all__ = [
    "Asked",
    "Asker",
    "Inflight",
    "JobStatus",
    "KnownFile",
    "Ledger",
    "Notification",
    "Outcome",
    "Recipient",
    "RequestRow",
    "claim_of",
    "idempotency_key",
    "job_outcome",
]
