"""One delivery pass over the due notifications; the Dagster sensor calls it every tick
(:func:`deliver_due`), and the run that stored a file and the API request that
found one in the cache call it for their own job at once (:func:`deliver_now`).

First route the deliverable recipients to the enabled channels that can reach
them (one delivery row per recipient and channel, :meth:`Deliveries.route`);
then for each leased delivery build a FRESH download link (the stored file
outlives any link), send it on its channel and settle it — ``sent``, or back
off (dead on a permanent error) for that channel alone. A pass that dies
half-way loses nothing: its leases expire and the rows are claimed again with
the same idempotency key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from orchestration.delivery.channels import (
    ChannelContext,
    DeliveryError,
    Link,
    NotificationChannel,
    PermanentError,
    RetryableError,
    registered,
)
from orchestration.delivery.storage import ReportStorage
from orchestration.ledger import Ledger, Notification, Outcome, Recipient
from orchestration.redact import redact_credentials

log = logging.getLogger("orchestration.delivery")

#: Rows leased per claim; small batches keep the lease short, so a crashed
#: worker's rows come back quickly.
CLAIM_BATCH = 10
SMTP_TIMEOUT_SECONDS = 10.0


class DeliverySettings(Protocol):
    """What delivery needs to know; ``Settings`` and the Dagster notifier resource both qualify."""

    notify_url: str
    notify_secret: str
    notify_timeout_seconds: float
    smtp_url: str
    smtp_from: str
    link_ttl_seconds: int


@dataclass
class DeliveryStats:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    #: Leased but handed back unsent because the time budget ran out.
    released: int = 0
    channel_sends: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: True when no channel is configured: nothing was claimed, rows wait.
    disabled: bool = False


def build_channels(settings: DeliverySettings, *, titles: Mapping[str, str] | None = None) -> list[NotificationChannel]:
    """The registered channels (:data:`orchestration.delivery.channels.REGISTRY`) that configuration
    turns on, in registration order; the caller closes them."""
    context = ChannelContext(settings, dict(titles or {}))
    return [channel for factory in registered().values() if (channel := factory(context)) is not None]


def channels_configured(settings: DeliverySettings) -> bool:
    """Whether any channel is on (nothing can be delivered otherwise: rows wait)."""
    channels = build_channels(settings)
    for channel in channels:
        channel.close()
    return bool(channels)


def _link(notification: Notification, storage: ReportStorage, settings: DeliverySettings, now: datetime) -> Link | None:
    if notification.status_of_job != "succeeded":
        return None
    key, filename = notification.storage_key, notification.filename
    if not key or not filename:
        raise PermanentError("succeeded notification without storage key or filename")
    try:
        present = storage.exists(key)
    except Exception as exc:  # storage unreachable: try again later
        raise RetryableError(f"storage error: {exc!r}") from exc
    if not present:
        raise PermanentError(f"stored report file is missing: {key}")
    expires_in = storage.link_expires_in(settings.link_ttl_seconds)
    try:
        url = storage.download_url(key, filename, expires_in, now=now)
    except Exception as exc:
        raise RetryableError(f"could not sign download link: {exc!r}") from exc
    return Link(url=url, expires_at=now + timedelta(seconds=expires_in))


def _deliver_one(
    ledger: Ledger,
    notification: Notification,
    channel: NotificationChannel,
    storage: ReportStorage,
    settings: DeliverySettings,
    now: datetime,
    stats: DeliveryStats,
) -> None:
    """Send one delivery (one recipient on one channel) and settle it."""
    n = notification
    assert n.id is not None
    try:
        channel.send(n, _link(n, storage, settings, now))
    except DeliveryError as exc:
        error: DeliveryError = exc
    except Exception as exc:  # a bug must not stall the other rows
        error = RetryableError(f"{channel.name}: unexpected {exc!r}")
    else:
        ledger.deliveries.mark_sent(n.id, now)
        stats.sent += 1
        stats.channel_sends[channel.name] = stats.channel_sends.get(channel.name, 0) + 1
        return
    message = redact_credentials(str(error))  # a receiver may echo the link back
    stats.errors.append(f"notification {n.id} ({n.channel}): {message}")
    retry_after = error.retry_after if isinstance(error, RetryableError) else None
    permanent = isinstance(error, PermanentError)
    state = ledger.deliveries.mark_failed(n.id, message, now, permanent=permanent, retry_after=retry_after)
    if state == "dead":
        stats.dead += 1
    else:
        stats.retrying += 1


def deliver_due(
    ledger: Ledger,
    storage: ReportStorage,
    settings: DeliverySettings,
    now: datetime,
    limit: int = 50,
    *,
    channels: Sequence[NotificationChannel] | None = None,
    titles: Mapping[str, str] | None = None,
    time_budget_seconds: float | None = None,
) -> DeliveryStats:
    """Deliver up to ``limit`` due notifications as of ``now`` (an aware datetime).

    ``channels`` defaults to :func:`build_channels`; ``titles`` maps report
    slugs to the names used in e-mail subjects. With ``time_budget_seconds``
    (a sensor tick has a deadline) no new row is started once the budget is
    spent; rows already leased but not started are released for the next pass.
    """
    return _deliver(ledger, storage, settings, now, limit, channels, titles, time_budget_seconds)


def deliver_job(
    ledger: Ledger,
    storage: ReportStorage,
    settings: DeliverySettings,
    job_id: str,
    now: datetime,
    *,
    channels: Sequence[NotificationChannel] | None = None,
    titles: Mapping[str, str] | None = None,
    limit: int = 200,
) -> DeliveryStats:
    """One delivery pass over the due rows of ONE job (the fast path; see :func:`deliver_now`).

    The rows are leased exactly as :func:`deliver_due` leases them
    (:meth:`Deliveries.claim_job_due`), so this pass and a concurrent sensor pass
    never send the same row; a failed channel backs off and is left to the sensor.
    """
    return _deliver(ledger, storage, settings, now, limit, channels, titles, None, job_id=job_id)


def deliver_now(
    ledger: Ledger,
    storage: ReportStorage,
    settings: DeliverySettings,
    job_id: str,
    *,
    completed: Outcome | None = None,
    claim_id: str | None = None,
    titles: Mapping[str, str] | None = None,
) -> DeliveryStats | None:
    """The fast path: tell a job's requesters at once instead of at the delivery sensor's next tick.

    ``completed`` = (status, storage_key, filename) records how the run ended
    first (:meth:`Requests.complete_job`, with the run's ``claim_id``), exactly as
    the sensor would. Returns None without touching anything else when the job
    has nobody waiting (one indexed look-up: a backfill batch pays nothing
    more). Never raises: whatever fails is logged and left to the sensor, the
    safety net (the rows stay ``waiting``/``pending``, or back off after a failed
    attempt).
    """
    channels: list[NotificationChannel] = []
    try:
        # Built once and passed on: each build opens an HTTP client with a fresh SSL context (20-200 ms).
        channels = build_channels(settings, titles=titles)
        if not channels:
            return None  # no channel: nothing could be sent (the sensor records the outcome)
        if not ledger.deliveries.has_undelivered(job_id, claim_id):
            return None
        if completed is not None:
            ledger.requests.complete_job(job_id, completed, claim_id=claim_id)
        stats = deliver_job(ledger, storage, settings, job_id, datetime.now(UTC), channels=channels, titles=titles)
    except Exception:
        log.warning("fast delivery of job %s failed; the delivery sensor will retry", job_id, exc_info=True)
        return None
    finally:
        for channel in channels:
            channel.close()
    for error in stats.errors:
        log.warning("fast delivery of job %s: %s", job_id, error)
    return stats


def _deliver(
    ledger: Ledger,
    storage: ReportStorage,
    settings: DeliverySettings,
    now: datetime,
    limit: int,
    channels: Sequence[NotificationChannel] | None,
    titles: Mapping[str, str] | None,
    time_budget_seconds: float | None,
    *,
    job_id: str | None = None,
) -> DeliveryStats:
    owned = channels is None
    active = {c.name: c for c in (build_channels(settings, titles=titles) if channels is None else channels)}
    stats = DeliveryStats()
    if not active:
        stats.disabled = True
        return stats
    per_row = settings.notify_timeout_seconds + SMTP_TIMEOUT_SECONDS
    lease_seconds = 60.0 + CLAIM_BATCH * per_row
    deadline = None if time_budget_seconds is None else time.monotonic() + time_budget_seconds

    def route(recipient: Recipient) -> list[str]:
        return [name for name, channel in active.items() if channel.applies_to(recipient)]

    def claim(batch: int) -> list[Notification]:
        if job_id is None:
            return ledger.deliveries.claim_due(now, batch, lease_seconds, channels=active)
        return ledger.deliveries.claim_job_due(job_id, now, batch, lease_seconds, channels=active)

    try:
        stats.dead += ledger.deliveries.route(route, now, job_id=job_id).unreachable
        while stats.claimed < limit and (deadline is None or time.monotonic() < deadline):
            batch = claim(min(CLAIM_BATCH, limit - stats.claimed))
            if not batch:
                break
            stats.claimed += len(batch)
            for position, notification in enumerate(batch):
                if deadline is not None and time.monotonic() >= deadline:
                    left = [n.id for n in batch[position:] if n.id is not None]
                    ledger.deliveries.release(left, now)
                    stats.claimed -= len(left)
                    stats.released += len(left)
                    break
                channel = active[str(notification.channel)]
                _deliver_one(ledger, notification, channel, storage, settings, now, stats)
    finally:
        if owned:
            for channel in active.values():
                channel.close()
    return stats


class BackgroundDelivery:
    """:func:`deliver_now` on a small pool of worker threads, for a process that must answer first.

    The API submits the job it just made deliverable (a cache hit, a run it saw
    finish) and answers at once; a worker sends the notification a few
    milliseconds later instead of at the delivery sensor's next tick. A job
    still queued when the process stops is not lost: its rows stay ``pending``
    for the sensor.
    """

    def __init__(
        self,
        ledger: Ledger,
        storage: ReportStorage,
        settings: DeliverySettings,
        *,
        titles: Mapping[str, str] | None = None,
        workers: int = 2,
    ) -> None:
        self.ledger = ledger
        self.storage = storage
        self.settings = settings
        self.titles = titles
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lxp-deliver")
        self._enabled: bool | None = None

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            self._enabled = channels_configured(self.settings)
        return self._enabled

    def submit(self, job_id: str) -> Future[DeliveryStats | None] | None:
        """Deliver ``job_id``'s due rows soon; None when no channel is configured (or the pool is closed)."""
        if not self.enabled:
            return None
        try:
            return self._pool.submit(deliver_now, self.ledger, self.storage, self.settings, job_id, titles=self.titles)
        except RuntimeError:  # shut down: the sensor delivers it
            return None

    def close(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
