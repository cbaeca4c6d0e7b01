"""What a requester receives, checked the way the platform and a mail client see it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from orchestration.delivery.channels.webhook import verify_signature
from orchestration.ledger import idempotency_key
from tests.e2e.stack import NOTIFY_SECRET, wait_until
from tests.services.http_receiver import HttpReceiver, RecordedRequest
from tests.services.smtp import ReceivedMail, SmtpRecorder

WEBHOOK_FIELDS = {"userId", "institutionId", "subdomain", "typeReport", "status", "url", "expiresAt", "jobId", "cached"}


def webhook_calls(receiver: HttpReceiver, user: int) -> list[RecordedRequest]:
    """Every webhook call (accepted or not) addressed to ``user``."""
    return [r for r in list(receiver.requests) if r.json().get("userId") == user]


def accepted_webhooks(receiver: HttpReceiver, user: int) -> list[RecordedRequest]:
    return [r for r in webhook_calls(receiver, user) if 200 <= r.status < 300]


def wait_webhook(receiver: HttpReceiver, user: int, timeout: float, count: int = 1) -> list[RecordedRequest]:
    """Wait until ``count`` webhook calls for ``user`` were accepted (2xx)."""
    return wait_until(
        lambda: (found := accepted_webhooks(receiver, user)) and len(found) >= count and found,
        timeout,
        f"{count} accepted webhook call(s) for user {user}",
    )


def check_webhook(
    request: RecordedRequest, *, user: int, institution: int, subdomain: str, report: str
) -> dict[str, Any]:
    """Signed body, stable idempotency key, the documented fields; returns the body."""
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    assert verify_signature(request.body, request.headers.get("x-signature"), NOTIFY_SECRET), request.headers
    body = request.json()
    assert set(body) == WEBHOOK_FIELDS, body
    assert (body["userId"], body["institutionId"], body["subdomain"], body["typeReport"]) == (
        user,
        institution,
        subdomain,
        report,
    )
    assert request.idempotency_key == idempotency_key(body["jobId"], user)
    if body["status"] == "succeeded":
        expires = datetime.strptime(body["expiresAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert expires > datetime.now(UTC), body
        assert body["url"].startswith("http"), body
    else:
        assert body["status"] == "failed" and body["url"] is None and body["expiresAt"] is None, body
    return body


def mails_to(smtp: SmtpRecorder, address: str) -> list[ReceivedMail]:
    return [m for m in list(smtp.messages) if address in m.rcpt_tos]


def wait_mail(smtp: SmtpRecorder, address: str, timeout: float, count: int = 1) -> list[ReceivedMail]:
    return wait_until(
        lambda: (found := mails_to(smtp, address)) and len(found) >= count and found,
        timeout,
        f"{count} e-mail(s) to {address}",
    )


def plain_text(mail: ReceivedMail) -> str:
    part = mail.message.get_body(preferencelist=("plain",))
    assert part is not None, mail.message
    return str(part.get_content())


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text)


def download(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return response
