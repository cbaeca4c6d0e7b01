"""Test shorthands for ledger rows, written only through the ledger's own API (``Ledger.requests``).

``enqueue`` records a requester of a job that already ended (deliverable at once, as the
sensor leaves a finished run's requesters); ``subscribe`` one of a job still running
(``waiting``). Both return False when the user already is a recipient of the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchestration.ledger import Asked, Asker, JobStatus, Ledger, Outcome
from orchestration.ledger.deliveries import Deliveries


def subscribe(
    ledger: Ledger, *, job_id: str, recipient_user_id: int, subdomain: str, email: str | None = None, **asked: Any
) -> str | None:
    """``asked``: the :class:`Asked` fields (``institution_id``, ``report``, ``period``, …), ``cached`` and ``now``."""
    now = asked.pop("now", None)
    kind = "cache" if asked.pop("cached", False) else "run"
    asker = Asker(recipient_user_id, subdomain, email)
    return ledger.requests.add_requester(Asked(kind=kind, **asked), asker, job_id=job_id, now=now)


def enqueue(ledger: Ledger, *, job_id: str, status_of_job: JobStatus, **who: Any) -> bool:
    """``who``: what :func:`subscribe` takes, plus the job's ``storage_key`` and ``filename``."""
    outcome: Outcome = (status_of_job, who.pop("storage_key", None), who.pop("filename", None))
    if status_of_job not in ("succeeded", "failed") or (status_of_job == "succeeded" and not all(outcome[1:])):
        raise ValueError(f"not a job outcome: {outcome!r}")
    added = subscribe(ledger, job_id=job_id, **who) is not None
    if added:
        ledger.requests.complete_job(job_id, outcome, now=who.get("now"))
    return added


def routed(ledger: Ledger, now: datetime, channels: Sequence[str] = ("webhook",)) -> Deliveries:
    """``ledger.deliveries`` after routing every deliverable recipient to ``channels`` as of ``now``
    (what a delivery pass does first), for tests that lease rows themselves."""
    ledger.deliveries.route(lambda recipient: list(channels), now)
    return ledger.deliveries
