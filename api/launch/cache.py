"""Cache policy: when a stored report file may answer a request instead of a new run.

A file is fresh when it is younger than the TTL (shorter for a period still
open) and was not built before its period closed. The ledger's file index is
asked first; on a miss Dagster (materializations, tagged runs) may know a newer
file, e.g. one built from the UI.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from api.dagster_client import DagsterClient, DagsterError, DagsterUnavailable, RunInfo
from api.errors import ApiError
from api.launch.tags import file_of_run
from assets.contract import TAG_CACHE_KEY, ProducedFile
from assets.request import RequestedReport
from orchestration.delivery.storage import STORAGE_ERRORS
from orchestration.ledger import KnownFile, Ledger

log = logging.getLogger("api.launch.cache")

STORAGE_UNAVAILABLE = "The report storage is unavailable; try again later"


class ReportCache:
    """``settings``: the TTLs and the first partition month (what counts as an exact-month partition)."""

    def __init__(self, settings: Any, dagster: DagsterClient, ledger: Ledger, storage: Any) -> None:
        self.settings = settings
        self.dagster = dagster
        self.ledger = ledger
        self.storage = storage

    def ttl(self, plan: RequestedReport, now: datetime) -> timedelta:
        seconds = (
            self.settings.open_month_cache_ttl_seconds if plan.open_period(now) else self.settings.cache_ttl_seconds
        )
        return timedelta(seconds=seconds)

    def is_fresh(self, plan: RequestedReport, produced_at: datetime, now: datetime) -> bool:
        """Younger than the TTL, and not built before its period closed: a file made
        while the month was still open is partial once the month has ended."""
        if plan.end is not None and produced_at < plan.end <= now:
            return False
        return now - produced_at <= self.ttl(plan, now)

    def fresh_file(self, plan: RequestedReport, key: str) -> KnownFile | None:
        """A fresh stored file: the ledger's file index first, Dagster on a miss."""
        now = datetime.now(UTC)
        known = self.ledger.files.known_file(key)
        if known is not None and self.is_fresh(plan, known.produced_at, now) and self._stored(known):
            return known
        found = self.find_cached(plan, key)
        if found is None:
            return None
        if known is None or found.produced_at > known.produced_at:
            self.ledger.files.remember_file(found)
        if not self.is_fresh(plan, found.produced_at, now) or not self._stored(found):
            return None
        return found

    def _stored(self, file: KnownFile) -> bool:
        """Is the file still in the store? A store that cannot answer is 503 ``unavailable``: treating
        it as a miss would launch a run that cannot write its file either (and, before the store's
        short timeouts, held the request for minutes)."""
        try:
            return bool(self.storage.exists(file.storage_key))
        except ValueError:  # a key the store refuses: that record names no usable file
            log.warning("cache: invalid storage key %s", file.storage_key, exc_info=True)
            return False
        except STORAGE_ERRORS as exc:
            log.warning("cache: storage check failed for %s: %s: %s", file.storage_key, type(exc).__name__, exc)
            raise ApiError("unavailable", STORAGE_UNAVAILABLE) from exc

    def find_cached(self, plan: RequestedReport, key: str) -> KnownFile | None:
        """Newest finished file for this request that Dagster knows, whatever its age."""
        partition = plan.partition_key(self.settings.first_partition_month)
        if partition is not None:
            event = self.dagster.latest_materialization(plan.spec.name, partition)
            produced = None if event is None else ProducedFile.from_metadata(event.metadata)
            if event is not None and produced is not None:
                return KnownFile(
                    cache_key=key,
                    storage_key=produced.storage_key,
                    filename=produced.filename,
                    rows=produced.rows,
                    produced_at=event.timestamp,
                    run_id=event.run_id,
                )
        runs = self.dagster.find_runs(tags={TAG_CACHE_KEY: key}, statuses=["SUCCESS"], limit=1)
        for run in runs:
            file = file_of_run(run)
            if file is not None:
                return file
        return None

    def fresh_month_file(self, plan: RequestedReport, *, timeout: float) -> ProducedFile | None:
        """The month partition's file when ``plan`` is exactly that month (no filter), in the format
        asked and fresh (:meth:`is_fresh`); None otherwise. For the synchronous reports, which compute
        the answer themselves on a miss: a Dagster that does not answer within ``timeout`` is a miss."""
        partition = plan.partition_key(self.settings.first_partition_month)
        if partition is None:
            return None
        try:
            event = self.dagster.latest_materialization(plan.spec.name, partition, timeout=timeout)
        except (DagsterUnavailable, DagsterError) as exc:
            log.warning("sync %s: cache lookup skipped (%s)", plan.spec.slug, exc)
            return None
        produced = None if event is None else ProducedFile.from_metadata(event.metadata)
        if event is None or produced is None or produced.fmt != plan.fmt:
            return None
        return produced if self.is_fresh(plan, event.timestamp, datetime.now(UTC)) else None

    def learn(self, run: RunInfo) -> None:
        """Index the file of a finished run (seen by a join or a status poll) for later cache hits."""
        file = file_of_run(run)
        if file is not None:
            known = self.ledger.files.known_file(file.cache_key)
            if known is None or file.produced_at > known.produced_at:
                self.ledger.files.remember_file(file)
