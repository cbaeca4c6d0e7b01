"""The notifier resource: the request ledger and the delivery channels, configured once.

The delivery sensor used to rebuild its channels from the process settings on
every tick; as a resource the configuration is visible (and overridable) in
the Dagster UI, tests swap it like any other resource, and the sensor only
says *when* to deliver. The work itself is ``orchestration.delivery`` (no
Dagster), which the API and the CLI use directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import dagster as dg

from orchestration.defs.resources import settings_env
from orchestration.delivery.deliver import DeliveryStats, build_channels, deliver_due, deliver_now
from orchestration.delivery.storage import ReportStorage
from orchestration.ledger import Ledger, claim_of, job_outcome
from orchestration.settings import Settings


class NotifierResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # Dagster: a ConfigurableResource is its own resource value; subscripting the pydantic model class is not safe
    """Ledger database plus webhook/e-mail settings (a channel is on when its URL is set)."""

    ledger_url: str
    max_attempts: int = 8
    backoff_seconds: float = 5.0
    notify_url: str = ""
    notify_secret: str = ""
    notify_timeout_seconds: float = 5.0
    smtp_url: str = ""
    smtp_from: str = ""
    link_ttl_seconds: int = 7 * 24 * 3600

    @classmethod
    def from_settings(cls, s: Settings) -> NotifierResource:
        """The secret and the URLs (which can carry passwords or tokens) go in as ``dg.EnvVar``
        when they came from the environment (``orchestration.defs.resources.from_env``)."""
        return cls(
            ledger_url=settings_env(s, "ledger_url", s.ledger),
            max_attempts=s.outbox_max_attempts,
            backoff_seconds=s.outbox_backoff_seconds,
            notify_url=settings_env(s, "notify_url"),
            notify_secret=settings_env(s, "notify_secret"),
            notify_timeout_seconds=s.notify_timeout_seconds,
            smtp_url=settings_env(s, "smtp_url"),
            smtp_from=s.smtp_from,
            link_ttl_seconds=s.link_ttl_seconds,
        )

    def open_ledger(self) -> Ledger:
        """The ledger, without migrating it (the API, the sensor and ``lxp-reports migrate`` do); the caller
        disposes it."""
        return Ledger(self.ledger_url, max_attempts=self.max_attempts, backoff_seconds=self.backoff_seconds)

    def ledger(self) -> Ledger:
        """The ledger (schema migrated on first use); the caller disposes it."""
        ledger = self.open_ledger()
        ledger.migrate()
        return ledger

    def deliver(
        self,
        ledger: Ledger,
        storage: ReportStorage,
        now: datetime,
        *,
        titles: Mapping[str, str],
        limit: int = 50,
        time_budget_seconds: float | None = None,
    ) -> DeliveryStats:
        """One delivery pass over the due rows with this resource's channels."""
        channels = build_channels(self, titles=titles)
        stats = DeliveryStats(disabled=not channels)
        if not channels:
            return stats
        try:
            return deliver_due(
                ledger,
                storage,
                self,
                now,
                limit,
                channels=channels,
                titles=titles,
                time_budget_seconds=time_budget_seconds,
            )
        finally:
            for channel in channels:
                channel.close()

    def deliver_run(
        self, run_id: str, tags: Mapping[str, str], storage: ReportStorage, *, titles: Mapping[str, str]
    ) -> DeliveryStats | None:
        """The fast path of a run that stored its file: record the outcome and tell its requesters now.

        Only a run whose tags name its file (a single-request run, see
        ``reports.asset.tag_run``) is completed here; anything else (a backfill
        batch, a run without its file) is left to the sensor. Never raises (see
        ``deliver_now``); the ledger is opened without migrating (the API and the
        sensor create the schema).
        """
        status, storage_key, filename = job_outcome(True, tags)
        if status != "succeeded":
            return None
        ledger = self.open_ledger()
        try:
            return deliver_now(
                ledger,
                storage,
                self,
                run_id,
                completed=(status, storage_key, filename),
                claim_id=claim_of(tags),
                titles=titles,
            )
        finally:
            ledger.dispose()
