"""Platform notification API webhook (the monolith's in-app/push notification).

The body is signed so the receiver can trust it came from us:
``X-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``; the
``Idempotency-Key`` header is stable per (job, recipient), so a re-send after a
crash or a lost response is recognisable as the same notification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from orchestration.delivery.channels import ChannelContext, Link, PermanentError, RetryableError, register
from orchestration.ledger.deliveries import Notification, Recipient

# 4xx answers that mean "not now" rather than "never".
_TRANSIENT_4XX = {408, 425, 429}


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(notification: Notification, link: Link | None) -> dict[str, Any]:
    """JSON body of the notification API call (``url``/``expiresAt`` null on failure)."""
    return {
        "userId": notification.recipient_user_id,
        "institutionId": notification.institution_id,
        "subdomain": notification.subdomain,
        "typeReport": notification.report,
        "status": notification.status_of_job,
        "url": link.url if link else None,
        "expiresAt": iso_utc(link.expires_at) if link else None,
        "jobId": notification.job_id,
        "cached": notification.cached,
    }


def signature(body: bytes, secret: str) -> str:
    """Value of the ``X-Signature`` header for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Receiver-side check (constant time); used by tests and documented for the platform team."""
    return header is not None and hmac.compare_digest(signature(body, secret).encode(), header.encode())


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, secret: str, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        if not url:
            raise ValueError("webhook url is empty")
        self.url = url
        self.secret = secret
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def applies_to(self, recipient: Recipient) -> bool:
        return True

    def send(self, notification: Notification, link: Link | None) -> None:
        body = json.dumps(payload(notification, link), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification.idempotency_key,
            "X-Signature": signature(body, self.secret),
            "User-Agent": "lxp-reports-notifier",
        }
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"webhook timeout: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"webhook connection error: {exc!r}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"webhook answered HTTP {status}: {response.text[:300]}"
        if status >= 500 or status in _TRANSIENT_4XX:
            raise RetryableError(detail, retry_after=_retry_after(response))
        raise PermanentError(detail)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


@register("webhook")
def from_settings(context: ChannelContext) -> WebhookChannel | None:
    """On when ``LXP_NOTIFY_URL`` is set (signed with ``LXP_NOTIFY_SECRET``)."""
    s = context.settings
    return WebhookChannel(s.notify_url, s.notify_secret, s.notify_timeout_seconds) if s.notify_url else None
