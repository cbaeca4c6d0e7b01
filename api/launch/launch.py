"""Launching a report run for a claim the caller holds.

The requester is recorded against the claim BEFORE Dagster is asked, and the
run carries the claim id as a tag (``lxp/claim``): if this process dies after
launching but before publishing the run id, the requester is not lost — the
next identical request (or the delivery sensor when the run ends) finds the run
by its tag and binds it to the claim's requesters. While Dagster is being
asked, a heartbeat thread renews the claim's short liveness lease, so a claim
whose lease runs out is known to have lost its launcher.

``LXP_TEST_PAUSE_AFTER_LAUNCH`` (seconds, tests only) makes the launcher wait
between launching and publishing the run id: the window in which a crash
orphans a run, made wide enough for a test to kill the process in it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from api.dagster_client import DagsterClient
from assets.contract import (
    TAG_CACHE_KEY,
    TAG_CLAIM,
    TAG_INSTITUTION,
    TAG_INSTITUTION_NAME,
    TAG_REPORT,
    TAG_REQUESTER,
    adhoc_job_name,
    partition_job_name,
)
from assets.periods import partition_tags
from assets.request import RequestedReport
from orchestration.ledger import Asked, Asker, Inflight, Ledger

log = logging.getLogger("api.launch")

PAUSE_AFTER_LAUNCH_ENV = "LXP_TEST_PAUSE_AFTER_LAUNCH"


def asked_of(plan: RequestedReport, kind: str = "run") -> Asked:
    """What the ledger records about a request (the same for every requester of the job)."""
    return Asked(
        institution_id=plan.institution.id,
        report=plan.spec.slug,
        cache_key=plan.cache_key,
        params=plan.cache_params,
        period=plan.period_text(datetime.now(UTC)),
        timezone=plan.institution.timezone,
        kind=kind,
    )


def run_config(plan: RequestedReport) -> dict[str, Any]:
    """The ad-hoc job's run config for ``plan`` (``assets.contract.AdhocParams``)."""
    return plan.adhoc_params().run_config()


class RunStarter:
    def __init__(
        self, dagster: DagsterClient, ledger: Ledger, first_month: date, *, lease_seconds: float = 6.0
    ) -> None:
        """``first_month``: the first partition month (``Settings.first_partition_month``); an exact
        month from it on launches the partition job, anything else the ad-hoc job."""
        self.dagster = dagster
        self.ledger = ledger
        self.first_month = first_month
        self.lease_seconds = lease_seconds

    @contextmanager
    def heartbeat(self, claim: Inflight) -> Iterator[None]:
        """Keep the claim's lease alive while this block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.lease_seconds / 3):
                try:
                    self.ledger.claims.renew(claim.cache_key, claim.owner, self.lease_seconds)
                except Exception:  # a missed beat only shortens the lease
                    log.warning("could not renew the claim on %s", claim.cache_key[:12], exc_info=True)

        thread = threading.Thread(target=beat, name="claim-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def launch(self, asker: Asker, plan: RequestedReport, claim: Inflight) -> str:
        """Record the requester against ``claim``, launch the run, publish its id; returns the run id."""
        key = claim.cache_key
        tags = {
            TAG_REPORT: plan.spec.slug,
            TAG_INSTITUTION: str(plan.institution.id),
            TAG_INSTITUTION_NAME: plan.institution.name,
            TAG_REQUESTER: str(asker.user_id),
            TAG_CACHE_KEY: key,
            TAG_CLAIM: claim.claim_id,
        }
        month = plan.partition_month(self.first_month)
        with self.heartbeat(claim):
            try:
                self.ledger.requests.add_requester(asked_of(plan), asker, claim_id=claim.claim_id, launched=True)
                if month is not None:
                    self.dagster.ensure_institution_partition(plan.institution.id)
                    tags.update(partition_tags(plan.institution.id, month))
                    run_id = self.dagster.launch_run(partition_job_name(plan.spec.name), {}, tags)
                else:
                    run_id = self.dagster.launch_run(adhoc_job_name(plan.spec.name), run_config(plan), tags)
            except BaseException:
                try:
                    self.ledger.claims.forget_claim(claim.claim_id)
                    self.ledger.claims.release(key, owner=claim.owner)
                except Exception:
                    # The ledger is down too: the claim's lease runs out and the next identical
                    # request takes it over (a run Dagster never queued is not adopted).
                    log.warning("could not drop the claim on %s after a failed launch", key[:12], exc_info=True)
                raise
            if pause := float(os.environ.get(PAUSE_AFTER_LAUNCH_ENV) or 0):
                log.warning("test hook: pausing %.1f s after launching run %s", pause, run_id)
                time.sleep(pause)
        # Publish the run id (and bind the claim's requesters to it) so waiting
        # identical requests can join at once.
        if not self.ledger.claims.set_run(key, claim.owner, run_id, claim.claim_id):
            log.warning("inflight claim for %s was taken over while launching run %s", key, run_id)
        log.info("launched run %s for %s institution=%s key=%s", run_id, plan.spec.slug, plan.institution.id, key[:12])
        # Normally our run. If our lease ran out mid-launch and another process relaunched
        # under this claim first, the requesters are bound to that run: answer with it.
        return self.ledger.claims.job_of_claim(claim.claim_id) or run_id
