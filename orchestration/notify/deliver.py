"""One delivery pass over the outbox; the Dagster sensor calls it every tick.

For each claimed row: build a FRESH download link (the stored file outlives
any link), send through every enabled channel that has not succeeded for this
row yet, stamp each success at once, and settle the row — ``sent`` when every
channel is done, otherwise back off (or go dead on a permanent error). A pass
that dies half-way loses nothing: its leases expire and the rows are claimed
again with the same idempotency key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestration.notify import DeliveryError, Link, NotificationChannel, PermanentError, RetryableError
from orchestration.notify.email import EmailChannel
from orchestration.notify.webhook import WebhookChannel
from orchestration.outbox import Notification, Outbox
from orchestration.redact import redact_credentials
from orchestration.settings import Settings
from orchestration.storage import ReportStorage

#: Rows leased per claim; small batches keep the lease short, so a crashed
#: worker's rows come back quickly.
CLAIM_BATCH = 10
SMTP_TIMEOUT_SECONDS = 10.0


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


def build_channels(settings: Settings, *, titles: Mapping[str, str] | None = None) -> list[NotificationChannel]:
    """The channels enabled by configuration (a channel is on when its URL is set)."""
    channels: list[NotificationChannel] = []
    if settings.notify_url:
        channels.append(WebhookChannel(settings.notify_url, settings.notify_secret, settings.notify_timeout_seconds))
    if settings.smtp_url:
        channels.append(
            EmailChannel(settings.smtp_url, settings.smtp_from, timeout=SMTP_TIMEOUT_SECONDS, titles=titles)
        )
    return channels


def _link(notification: Notification, storage: ReportStorage, settings: Settings, now: datetime) -> Link | None:
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
    outbox: Outbox,
    notification: Notification,
    channels: Sequence[NotificationChannel],
    storage: ReportStorage,
    settings: Settings,
    now: datetime,
    stats: DeliveryStats,
) -> None:
    n = notification
    applicable = [c for c in channels if c.applies_to(n)]
    if not applicable:
        outbox.mark_failed(n.id, "no enabled channel can reach this recipient", now, permanent=True)
        stats.dead += 1
        return
    errors: list[DeliveryError] = []
    todo = [c for c in applicable if n.channel_sent_at(c.name) is None]
    if todo:
        try:
            link = _link(n, storage, settings, now)
        except DeliveryError as exc:
            errors.append(exc)
            todo = []
        for channel in todo:
            try:
                channel.send(n, link)
            except DeliveryError as exc:
                errors.append(exc)
                continue
            except Exception as exc:  # a bug must not stall the other rows
                errors.append(RetryableError(f"{channel.name}: unexpected {exc!r}"))
                continue
            outbox.mark_channel_sent(n.id, channel.name, now)
            stats.channel_sends[channel.name] = stats.channel_sends.get(channel.name, 0) + 1
    if not errors:
        outbox.mark_sent(n.id, now)
        stats.sent += 1
        return
    message = redact_credentials("; ".join(str(e) for e in errors))  # a receiver may echo the link back
    stats.errors.append(f"notification {n.id}: {message}")
    permanent = any(isinstance(e, PermanentError) for e in errors)
    delays = [e.retry_after for e in errors if isinstance(e, RetryableError) and e.retry_after is not None]
    state = outbox.mark_failed(n.id, message, now, permanent=permanent, retry_after=max(delays) if delays else None)
    if state == "dead":
        stats.dead += 1
    else:
        stats.retrying += 1


def deliver_due(
    outbox: Outbox,
    storage: ReportStorage,
    settings: Settings,
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
    owned = channels is None
    active = list(build_channels(settings, titles=titles) if channels is None else channels)
    stats = DeliveryStats()
    if not active:
        stats.disabled = True
        return stats
    per_row = settings.notify_timeout_seconds + SMTP_TIMEOUT_SECONDS
    lease_seconds = 60.0 + CLAIM_BATCH * per_row
    deadline = None if time_budget_seconds is None else time.monotonic() + time_budget_seconds
    try:
        while stats.claimed < limit and (deadline is None or time.monotonic() < deadline):
            batch = outbox.claim_due(now, min(CLAIM_BATCH, limit - stats.claimed), lease_seconds)
            if not batch:
                break
            stats.claimed += len(batch)
            for position, notification in enumerate(batch):
                if deadline is not None and time.monotonic() >= deadline:
                    left = [n.id for n in batch[position:]]
                    outbox.release(left, now)
                    stats.claimed -= len(left)
                    stats.released += len(left)
                    break
                _deliver_one(outbox, notification, active, storage, settings, now, stats)
    finally:
        if owned:
            for channel in active:
                channel.close()
    return stats
