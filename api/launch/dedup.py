"""In-flight dedup: joining the identical run somebody else launched, or adopting an orphan.

Dedup across threads, processes and replicas goes through the ledger's
``inflight`` claims: the first request inserts the claim for its cache key and
launches; the others wait for the run id and join it (their requester is bound
to that run, so the delivery sensor notifies them when it ends).

A claim without a run id whose liveness lease ran out lost its launcher (the
process died between claiming and publishing). Whoever sees that takes the
claim over and looks the run up in Dagster by its claim tag: a run still going
is adopted (the dead launcher's requesters are bound to it and the caller
joins), a finished one is settled (its requesters are told the outcome) and
the caller starts over, and when no run exists the caller launches under the
same claim, so the earlier requesters are served by that run.

Only a run Dagster queued is adopted (:data:`ADOPTABLE`: it will run, runs or
ran). A launch that failed half-way — Dagster created the run, then its storage
blipped before the run reached the queue — leaves a ``NOT_STARTED`` run that
nothing will ever start: it is deleted (or, if Dagster cannot be asked, left
alone) and a new run is launched under the same claim.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from api.dagster_client import DagsterClient, DagsterError, DagsterUnavailable, RunInfo
from api.launch.cache import ReportCache
from api.launch.launch import asked_of
from assets.contract import TAG_CLAIM
from assets.request import RequestedReport
from orchestration.ledger import Asker, Inflight, Ledger, job_outcome

log = logging.getLogger("api.launch.dedup")

#: Statuses of a run Dagster queued: it will run, runs or ran (a finished one is settled).
ADOPTABLE = frozenset({"QUEUED", "STARTING", "STARTED", "CANCELING", "SUCCESS", "FAILURE", "CANCELED"})
#: A run created but never queued (its launch failed half-way): nothing will ever start it.
NEVER_QUEUED = "NOT_STARTED"


class Dedup:
    def __init__(
        self,
        dagster: DagsterClient,
        ledger: Ledger,
        cache: ReportCache,
        *,
        deliver: Callable[[str], object] | None = None,
    ) -> None:
        self.dagster = dagster
        self.ledger = ledger
        self.cache = cache
        self.deliver = deliver or (lambda _job_id: None)

    def wait_for_run(
        self, key: str, existing: Inflight, *, expired: Callable[[], bool], pause: Callable[[], None]
    ) -> Inflight | None:
        """Wait until the claim has a run id, is released (None), or is orphaned (returned as is)."""
        current: Inflight | None = existing
        while current is not None and current.run_id is None and not current.orphaned():
            if expired():
                return current
            pause()
            current = self.ledger.claims.get_inflight(key)
        return current

    def adopt(self, claim: Inflight) -> RunInfo | None:
        """We hold ``claim`` after taking it over: bind the dead launcher's run, if Dagster has one."""
        runs = self.dagster.find_runs(tags={TAG_CLAIM: claim.claim_id}, limit=5)
        for stranded in (run for run in runs if run.status == NEVER_QUEUED):
            self.discard(stranded)
        adoptable = [run for run in runs if run.status in ADOPTABLE]
        if not adoptable:
            return None
        run = adoptable[0]
        self.ledger.claims.set_run(claim.cache_key, claim.owner, run.run_id, claim.claim_id)
        log.warning("adopted run %s of a launcher that died (claim %s)", run.run_id, claim.claim_id)
        return run

    def discard(self, run: RunInfo) -> None:
        """Delete a run that was never queued; if Dagster cannot be asked it stays, unadopted (harmless:
        the claim's requesters get bound to the run launched instead, and only once)."""
        try:
            self.dagster.delete_run(run.run_id)
        except (DagsterUnavailable, DagsterError) as exc:
            log.warning("could not delete never-queued run %s (claim %s): %s", run.run_id, run.tags.get(TAG_CLAIM), exc)
            return
        log.warning("deleted run %s: created but never queued (claim %s)", run.run_id, run.tags.get(TAG_CLAIM))

    def join(self, asker: Asker, plan: RequestedReport, run: RunInfo) -> None:
        state = self.ledger.requests.add_requester(asked_of(plan), asker, job_id=run.run_id)
        if state == "pending":  # the run's hook already recorded the outcome: send now, not at the sensor's tick
            self.deliver(run.run_id)
        else:
            self.settle_if_finished(run.run_id)

    def settle(self, run: RunInfo) -> None:
        """Record a finished run's outcome: its waiting requesters are released for delivery."""
        self.cache.learn(run)
        outcome = job_outcome(run.status == "SUCCESS", run.tags)
        released = self.ledger.requests.complete_job(run.run_id, outcome, claim_id=run.tags.get(TAG_CLAIM))
        if released:  # we released them: send now rather than at the sensor's next tick
            self.deliver(run.run_id)

    def settle_if_finished(self, run_id: str) -> None:
        """Release our waiting notification ourselves if the run already ended.

        The run may end between our status check and our insert, after the
        sensor has released the job's waiting rows without ours. Releasing
        again is harmless: ``complete_job`` only touches rows still waiting.
        """
        try:
            latest = self.dagster.get_run(run_id)
        except (DagsterUnavailable, DagsterError) as exc:
            # Best effort: the run exists and the requester is subscribed; the
            # delivery sensor releases the row when it sees the run finish.
            log.warning("could not re-check run %s after subscribing: %s", run_id, exc)
            return
        if latest is None or latest.active:
            return
        self.settle(latest)
