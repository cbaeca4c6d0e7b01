"""The thin orchestration of one asynchronous request: cache, then dedup, then launch.

Each step lives in its own module (:mod:`api.launch.cache`,
:mod:`api.launch.dedup`, :mod:`api.launch.launch`); this class only decides
which one answers and loops when the in-flight picture changed under it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from api.dagster_client import DagsterClient, RunInfo
from api.dependencies import Principal
from api.errors import ApiError
from api.launch.cache import ReportCache
from api.launch.dedup import Dedup
from api.launch.launch import RunStarter, asked_of
from api.metrics import report_outcome
from assets.request import RequestedReport
from orchestration.ledger import Asker, Inflight, Ledger

log = logging.getLogger("api.launcher")

BUSY = "An identical report is being queued; try again in a few seconds"


class ReportLauncher:
    """Cache lookup, in-flight dedup and run launch for asynchronous reports."""

    def __init__(
        self,
        settings: Any,
        dagster: DagsterClient,
        ledger: Ledger,
        storage: Any,
        *,
        wait_for_launch_seconds: float = 30.0,
        lease_seconds: float = 6.0,
        email_of: Callable[[int, int], str | None] | None = None,
        deliver: Callable[[str], object] | None = None,
    ) -> None:
        """``email_of(user_id, institution_id)`` gives the requester's address for the email channel;
        ``deliver(job_id)`` sends a job's due notifications soon, without waiting for the delivery
        sensor's tick (``BackgroundDelivery.submit``; it must not block the request)."""
        self.settings = settings
        self.dagster = dagster
        self.ledger = ledger
        self.storage = storage
        self.wait_for_launch_seconds = wait_for_launch_seconds
        self.lease_seconds = lease_seconds
        self.email_of = email_of or (lambda _user, _institution: None)
        self.deliver = deliver or (lambda _job_id: None)
        self.cache = ReportCache(settings, dagster, ledger, storage)
        self.dedup = Dedup(dagster, ledger, self.cache, deliver=self.deliver)
        self.starter = RunStarter(dagster, ledger, settings.first_partition_month, lease_seconds=lease_seconds)

    # Cache policy, used by the sync endpoints and job polling too.
    def is_fresh(self, plan: RequestedReport, produced_at: datetime, now: datetime) -> bool:
        return self.cache.is_fresh(plan, produced_at, now)

    def ttl(self, plan: RequestedReport, now: datetime) -> timedelta:
        return self.cache.ttl(plan, now)

    def learn(self, run: RunInfo) -> None:
        self.cache.learn(run)

    def _launch(self, asker: Asker, plan: RequestedReport, claim: Inflight) -> str:
        run_id = self.starter.launch(asker, plan, claim)
        report_outcome(plan.spec.slug, "launched")
        return run_id

    def request(self, principal: Principal, plan: RequestedReport) -> dict[str, Any]:
        """``{"id": run_id}`` (new or joined run) or ``{"cached": True}``."""
        key = plan.cache_key
        asker = Asker(
            principal.user_id, principal.subdomain, self.email_of(principal.user_id, principal.institution_id)
        )
        deadline = time.monotonic() + self.wait_for_launch_seconds
        delay = [0.02]

        def expired() -> bool:
            return time.monotonic() > deadline

        def pause() -> None:
            time.sleep(delay[0])
            delay[0] = min(delay[0] * 1.5, 0.25)

        while True:
            if expired():
                raise ApiError("unavailable", BUSY)
            cached = self.cache.fresh_file(plan, key)
            if cached is not None:
                job_id = f"cache:{key}:{uuid.uuid4().hex}"
                self.ledger.requests.record_cache_hit(asked_of(plan, "cache"), asker, job_id, cached)
                report_outcome(plan.spec.slug, "cache_hit")
                self.deliver(job_id)  # "resend the link" now, not at the sensor's next tick
                return {"cached": True}
            mine, existing = self.ledger.claims.claim(key, lease_seconds=self.lease_seconds)
            if mine is not None:
                return {"id": self._launch(asker, plan, mine)}
            assert existing is not None
            existing = self.dedup.wait_for_run(key, existing, expired=expired, pause=pause)
            if existing is None:
                continue  # the launcher gave up: start over
            if existing.run_id is None:
                if not existing.orphaned():
                    raise ApiError("unavailable", BUSY)
                # Its launcher died mid-launch: take the claim over.
                mine = self.ledger.claims.take_over(existing, lease_seconds=self.lease_seconds)
                if mine is None:
                    continue  # somebody else adopted it first
                orphan = self.dedup.adopt(mine)
                if orphan is None:
                    return {"id": self._launch(asker, plan, mine)}
                existing = self.ledger.claims.get_inflight(key)
                if existing is None or existing.run_id is None:
                    continue
            run = self.dagster.get_run(existing.run_id)
            if run is not None and run.active:
                self.dedup.join(asker, plan, run)
                report_outcome(plan.spec.slug, "joined")
                return {"id": run.run_id}
            # The run finished (or vanished): the slot is stale. Settle it (its requesters
            # learn the outcome) and look again: a success is now a cache hit, anything
            # else relaunches.
            if run is not None:
                self.dedup.settle(run)
            self.ledger.claims.release(key, run_id=existing.run_id)
