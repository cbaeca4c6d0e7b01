"""Notification channels (platform webhook, SMTP e-mail) and the delivery loop.

A channel turns one outbox row plus a fresh download link into one message.
It raises :class:`RetryableError` for trouble that may go away (5xx, timeouts,
connection errors, SMTP 4xx) and :class:`PermanentError` for a message the
receiver will never accept (HTTP 4xx, SMTP 5xx recipient refusal), which sends
the row straight to the dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from orchestration.ledger.deliveries import Channel, Notification


class DeliveryError(Exception):
    """A channel could not deliver a notification."""

    retryable: bool = True


class RetryableError(DeliveryError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    retryable = False


@dataclass(frozen=True)
class Link:
    """A download link issued for one delivery attempt."""

    url: str
    expires_at: datetime


class NotificationChannel(Protocol):
    name: Channel

    def applies_to(self, notification: Notification) -> bool:
        """False when this row has nothing to send on this channel (e.g. no e-mail address)."""
        ...

    def send(self, notification: Notification, link: Link | None) -> None: ...

    def close(self) -> None: ...
