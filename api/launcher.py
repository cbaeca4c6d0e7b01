"""Turning an asynchronous report request into a cache hit, a joined run or a new run.

The API never computes an asynchronous report: it looks for a fresh file
(cache), then for an identical run still in flight (dedup), and only then asks
Dagster for a run. A request that is exactly one month with no filters
materializes that asset partition, so API, schedule and UI runs share one
cache; anything else runs the report's ad-hoc job.

Dedup across threads, processes and replicas goes through the ``inflight``
table of :mod:`orchestration.requests_store`: the first request inserts the row
for its cache key and launches; the others wait for the run id and join it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from api.dagster_client import DagsterClient, DagsterError, DagsterUnavailable, RunInfo
from api.dependencies import Principal
from api.errors import ApiError
from api.metrics import report_outcome
from assets.spec import Institution
from orchestration.cache_key import cache_key as compute_cache_key
from orchestration.outbox import job_outcome
from orchestration.periods import MONTHS_START, month_bounds, partition_key, partition_tags
from orchestration.requests_store import KnownFile, RequestsStore
from orchestration.storage import STORAGE_ERRORS

log = logging.getLogger("api.launcher")

TAG_REPORT = "lxp/report"
TAG_INSTITUTION = "lxp/institution"
TAG_REQUESTER = "lxp/requester"
TAG_CACHE_KEY = "lxp/cache_key"
TAG_STORAGE_KEY = "lxp/storage_key"
TAG_FILENAME = "lxp/filename"
TAG_ROWS = "lxp/rows"


@dataclass(frozen=True)
class RunPlan:
    """Everything needed to look up, dedupe and launch one report request."""

    spec_name: str
    slug: str
    institution: Institution
    start: datetime
    end: datetime  # exclusive
    filters: Mapping[str, Any] = field(default_factory=dict)
    fmt: str = "xlsx"
    cache_params: Mapping[str, Any] = field(default_factory=dict)
    period: str = ""

    @property
    def cache_key(self) -> str:
        return compute_cache_key(self.slug, self.institution.id, self.cache_params)

    @property
    def partition_key(self) -> str | None:
        """``"<institution>|<YYYY-MM-01>"`` when the request is exactly one existing month partition."""
        if self.filters:
            return None
        month = self.start.astimezone(self.institution.tz).date().replace(day=1)
        if (self.start, self.end) != month_bounds(month, self.institution.timezone):
            return None
        if month < MONTHS_START or month > datetime.now(UTC).date().replace(day=1):
            return None  # the monthly partitions run from 2024-01 to the current month
        return partition_key(self.institution.id, month)

    def open_period(self, now: datetime) -> bool:
        """True when the period has not ended yet (its file may still change)."""
        return self.end > now


def month_period(institution: Institution, year: int, month: int) -> tuple[datetime, datetime]:
    return month_bounds(date(year, month, 1), institution.timezone)


def date_range_period(institution: Institution, first: date, last: date) -> tuple[datetime, datetime]:
    """Inclusive local dates -> [first 00:00, day after last 00:00) in the institution's timezone."""
    start = datetime(first.year, first.month, first.day, tzinfo=institution.tz)
    after = last + timedelta(days=1)
    return start, datetime(after.year, after.month, after.day, tzinfo=institution.tz)


def file_of_run(run: RunInfo) -> KnownFile | None:
    """The file a successful single-request run produced, from its tags (None otherwise)."""
    tags = run.tags
    if run.status != "SUCCESS" or not (
        tags.get(TAG_CACHE_KEY) and tags.get(TAG_STORAGE_KEY) and tags.get(TAG_FILENAME)
    ):
        return None
    rows = tags.get(TAG_ROWS)
    return KnownFile(
        cache_key=tags[TAG_CACHE_KEY],
        storage_key=tags[TAG_STORAGE_KEY],
        filename=tags[TAG_FILENAME],
        rows=int(rows) if rows and rows.isdigit() else None,
        # A partition's materialization is stamped before its run ends: take the
        # run's start there, so a file learned from tags never outlives the TTL.
        produced_at=(run.started_at if "dagster/partition" in tags else None)
        or run.ended_at
        or run.created_at
        or datetime.now(UTC),
        run_id=run.run_id,
    )


class ReportLauncher:
    """Cache lookup, in-flight dedup and run launch for asynchronous reports."""

    def __init__(
        self,
        settings: Any,
        dagster: DagsterClient,
        store: RequestsStore,
        outbox: Any,
        storage: Any,
        *,
        wait_for_launch_seconds: float = 30.0,
        stale_claim_seconds: float = 120.0,
        email_of: Callable[[int, int], str | None] | None = None,
    ) -> None:
        """``email_of(user_id, institution_id)`` gives the requester's address for the email channel."""
        self.settings = settings
        self.dagster = dagster
        self.store = store
        self.outbox = outbox
        self.storage = storage
        self.wait_for_launch_seconds = wait_for_launch_seconds
        self.stale_claim = timedelta(seconds=stale_claim_seconds)
        self.email_of = email_of or (lambda _user, _institution: None)

    # -- public ----------------------------------------------------------------

    def request(self, principal: Principal, plan: RunPlan) -> dict[str, Any]:
        """``{"id": run_id}`` (new or joined run) or ``{"cached": True}``."""
        key = plan.cache_key
        deadline = time.monotonic() + self.wait_for_launch_seconds
        delay = 0.02
        while True:
            if time.monotonic() > deadline:
                raise ApiError("unavailable", "An identical report is being queued; try again in a few seconds")
            cached = self._fresh_file(plan, key)
            if cached is not None:
                self._serve_cached(principal, plan, key, cached)
                return {"cached": True}
            owner, existing = self.store.claim(key)
            if owner is not None:
                return {"id": self._launch(principal, plan, key, owner)}
            assert existing is not None
            while existing is not None and existing.run_id is None:
                # Another request is launching right now: wait for its run id
                # (only the in-flight row is polled, not Dagster).
                if self.store.release_stale_claim(key, existing.owner, self.stale_claim):
                    existing = None
                    break
                if time.monotonic() > deadline:
                    raise ApiError("unavailable", "An identical report is being queued; try again in a few seconds")
                time.sleep(delay)
                delay = min(delay * 1.5, 0.25)
                existing = self.store.get_inflight(key)
            if existing is None:
                continue  # the launcher gave up (or crashed): start over
            run = self.dagster.get_run(existing.run_id)
            if run is not None and run.active:
                self._join(principal, plan, key, run)
                return {"id": run.run_id}
            # The run finished (or vanished): the slot is stale. Drop it and
            # look again: a success is now a cache hit, anything else relaunches.
            if run is not None:
                self.learn(run)
            self.store.release(key, run_id=existing.run_id)

    # -- cache -----------------------------------------------------------------

    def ttl(self, plan: RunPlan, now: datetime) -> timedelta:
        seconds = (
            self.settings.open_month_cache_ttl_seconds if plan.open_period(now) else self.settings.cache_ttl_seconds
        )
        return timedelta(seconds=seconds)

    def is_fresh(self, plan: RunPlan, produced_at: datetime, now: datetime) -> bool:
        """Younger than the TTL, and not built before its period closed: a file made
        while the month was still open is partial once the month has ended."""
        if produced_at < plan.end <= now:
            return False
        return now - produced_at <= self.ttl(plan, now)

    def _fresh_file(self, plan: RunPlan, key: str) -> KnownFile | None:
        """A fresh stored file: the store's index first, Dagster on a miss."""
        now = datetime.now(UTC)
        known = self.store.known_file(key)
        if known is not None and self.is_fresh(plan, known.produced_at, now) and self._stored(known):
            return known
        found = self.find_cached(plan, key)
        if found is None:
            return None
        if known is None or found.produced_at > known.produced_at:
            self.store.remember_file(found)
        if not self.is_fresh(plan, found.produced_at, now) or not self._stored(found):
            return None
        return found

    def _stored(self, file: KnownFile) -> bool:
        try:
            return bool(self.storage.exists(file.storage_key))
        except STORAGE_ERRORS:
            log.warning("cache: storage check failed for %s", file.storage_key, exc_info=True)
            return False

    def find_cached(self, plan: RunPlan, key: str) -> KnownFile | None:
        """Newest finished file for this request that Dagster knows, whatever its age."""
        partition = plan.partition_key
        if partition is not None:
            event = self.dagster.latest_materialization(plan.spec_name, partition)
            if event is not None and event.metadata.get("storage_key") and event.metadata.get("filename"):
                rows = event.metadata.get("rows")
                return KnownFile(
                    cache_key=key,
                    storage_key=str(event.metadata["storage_key"]),
                    filename=str(event.metadata["filename"]),
                    rows=None if rows is None else int(rows),
                    produced_at=event.timestamp,
                    run_id=event.run_id,
                )
        runs = self.dagster.find_runs(tags={TAG_CACHE_KEY: key}, statuses=["SUCCESS"], limit=1)
        for run in runs:
            file = file_of_run(run)
            if file is not None:
                return file
        return None

    def _serve_cached(self, principal: Principal, plan: RunPlan, key: str, cached: KnownFile) -> None:
        job_id = f"cache:{key}:{uuid.uuid4().hex}"
        report_outcome(plan.slug, "cache_hit")
        self._record(
            principal,
            plan,
            key,
            job_id,
            kind="cache",
            storage_key=cached.storage_key,
            filename=cached.filename,
            rows=cached.rows,
        )
        self.outbox.enqueue(
            job_id=job_id,
            recipient_user_id=principal.user_id,
            institution_id=principal.institution_id,
            subdomain=principal.subdomain,
            report=plan.slug,
            status_of_job="succeeded",
            cached=True,
            storage_key=cached.storage_key,
            filename=cached.filename,
            period=plan.period,
            email=self.email_of(principal.user_id, principal.institution_id),
            timezone=plan.institution.timezone,
        )

    # -- launch / join -----------------------------------------------------------

    def run_config(self, plan: RunPlan) -> dict[str, Any]:
        return {
            "ops": {
                "build_report": {
                    "config": {
                        "institution_id": plan.institution.id,
                        "start": plan.start.isoformat(),
                        "end": plan.end.isoformat(),
                        "filters_json": json.dumps(dict(plan.filters), sort_keys=True, ensure_ascii=False),
                        "fmt": plan.fmt,
                    }
                }
            }
        }

    def _launch(self, principal: Principal, plan: RunPlan, key: str, owner: str) -> str:
        tags = {
            TAG_REPORT: plan.slug,
            TAG_INSTITUTION: str(plan.institution.id),
            TAG_REQUESTER: str(principal.user_id),
            TAG_CACHE_KEY: key,
        }
        partition = plan.partition_key
        try:
            if partition is not None:
                self.dagster.ensure_institution_partition(plan.institution.id)
                tags.update(partition_tags(plan.institution.id, date.fromisoformat(partition.split("|")[1])))
                run_id = self.dagster.launch_run(f"{plan.spec_name}_job", {}, tags)
            else:
                run_id = self.dagster.launch_run(f"{plan.spec_name}_adhoc", self.run_config(plan), tags)
        except BaseException:
            self.store.release(key, owner=owner)
            raise
        # Publish the run id first so waiting identical requests can join at once.
        if not self.store.set_run(key, owner, run_id):
            log.warning("inflight claim for %s was taken over while launching run %s", key, run_id)
        self._record(principal, plan, key, run_id, launched=True)
        report_outcome(plan.slug, "launched")
        self._subscribe(principal, plan, run_id)
        self._settle_if_finished(run_id)
        log.info("launched run %s for %s institution=%s key=%s", run_id, plan.slug, plan.institution.id, key[:12])
        return run_id

    def _record(self, principal: Principal, plan: RunPlan, key: str, job_id: str, **extra: Any) -> None:
        """Add the requester to the job's recipients and history."""
        self.store.record(
            job_id=job_id,
            user_id=principal.user_id,
            institution_id=principal.institution_id,
            subdomain=principal.subdomain,
            report=plan.slug,
            cache_key=key,
            params=plan.cache_params,
            timezone=plan.institution.timezone,
            period=plan.period,
            **extra,
        )

    def _subscribe(self, principal: Principal, plan: RunPlan, run_id: str) -> None:
        """Record the requester's notification, released by the delivery sensor when the run ends."""
        self.outbox.subscribe(
            job_id=run_id,
            recipient_user_id=principal.user_id,
            institution_id=principal.institution_id,
            subdomain=principal.subdomain,
            report=plan.slug,
            period=plan.period,
            email=self.email_of(principal.user_id, principal.institution_id),
            timezone=plan.institution.timezone,
        )

    def learn(self, run: RunInfo) -> None:
        """Index the file of a finished run (seen by a join or a status poll) for later cache hits."""
        file = file_of_run(run)
        if file is not None:
            known = self.store.known_file(file.cache_key)
            if known is None or file.produced_at > known.produced_at:
                self.store.remember_file(file)

    def _settle_if_finished(self, run_id: str) -> None:
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
        self.learn(latest)
        status, key, filename = job_outcome(latest.status == "SUCCESS", latest.tags)
        self.outbox.complete_job(run_id, status, storage_key=key, filename=filename)

    def _join(self, principal: Principal, plan: RunPlan, key: str, run: RunInfo) -> None:
        report_outcome(plan.slug, "joined")
        self._record(principal, plan, key, run.run_id)
        self._subscribe(principal, plan, run.run_id)
        self._settle_if_finished(run.run_id)
