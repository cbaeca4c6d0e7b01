"""Notification channels (platform webhook, SMTP e-mail) and their registry.

A channel turns one delivery (a recipient on that channel) plus a fresh download
link into one message.
It raises :class:`RetryableError` for trouble that may go away (5xx, timeouts,
connection errors, SMTP 4xx) and :class:`PermanentError` for a message the
receiver will never accept (HTTP 4xx, SMTP 5xx recipient refusal), which sends
the delivery straight to the dead letters.

Adding a channel (see docs/architecture.md, "How to add a channel"): one module
here whose factory is registered with :func:`register` under the channel's name
and returns the channel when its own settings turn it on (None otherwise), plus
its name in :data:`MODULES`. The ledger stores deliveries per (recipient,
channel name): no migration, no ledger edit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from orchestration.ledger.deliveries import Notification, Recipient

#: The channel modules shipped here, imported (so registered) by :func:`registered`, in send order.
MODULES = ("webhook", "email")


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
    #: The registered name; the ledger keeps one delivery per recipient and channel name.
    name: str

    def applies_to(self, recipient: Recipient) -> bool:
        """False when this channel cannot reach the recipient (e.g. no e-mail address)."""
        ...

    def send(self, notification: Notification, link: Link | None) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ChannelContext:
    """What a channel factory is given: the delivery settings (``Settings`` or the Dagster notifier
    resource: link lifetime, and the webhook/e-mail settings) and the report titles."""

    settings: Any
    titles: Mapping[str, str] = field(default_factory=dict)


#: Builds the channel from its settings, or None when they leave it off.
ChannelFactory = Callable[[ChannelContext], "NotificationChannel | None"]
_REGISTRY: dict[str, ChannelFactory] = {}


def register(name: str) -> Callable[[ChannelFactory], ChannelFactory]:
    """Register ``factory`` as the channel ``name`` (a decorator)."""

    def add(factory: ChannelFactory) -> ChannelFactory:
        _REGISTRY[name] = factory
        return factory

    return add


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered() -> dict[str, ChannelFactory]:
    """Every registered channel, the shipped ones (:data:`MODULES`) first."""
    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return dict(_REGISTRY)
