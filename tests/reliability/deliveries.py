"""Counting notifications per (job, recipient) across every incarnation of the webhook
receiver and the SMTP server: what "0 lost, 0 duplicated" is measured with.

A webhook counts when the receiver accepted it (2xx); an e-mail is identified by the
notification's idempotency key in its Message-ID (the same key on every attempt).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from orchestration.ledger import idempotency_key
from tests.e2e.stack import wait_until
from tests.reliability.conftest import Mailer, Platform

Key = tuple[str, int]  # (job id, recipient user id)


@dataclass(frozen=True)
class Tally:
    expected: int
    webhooks: Counter[Key]
    mails: Counter[Key]

    def lost(self, keys: Iterable[Key]) -> list[str]:
        return [f"{k} webhook" for k in keys if not self.webhooks[k]] + [f"{k} mail" for k in keys if not self.mails[k]]

    def duplicated(self, keys: Iterable[Key]) -> list[str]:
        return [f"{k} webhook x{self.webhooks[k]}" for k in keys if self.webhooks[k] > 1] + [
            f"{k} mail x{self.mails[k]}" for k in keys if self.mails[k] > 1
        ]


def tally(platform: Platform, mailer: Mailer, keys: Iterable[Key]) -> Tally:
    wanted = list(keys)
    webhooks: Counter[Key] = Counter()
    for call in platform.calls():
        if 200 <= call.status < 300:
            body = call.json()
            webhooks[(str(body["jobId"]), int(body["userId"]))] += 1
    by_key = {idempotency_key(job, user): (job, user) for job, user in wanted}
    mails: Counter[Key] = Counter()
    for mail in mailer.messages():
        message_id = str(mail.message["Message-ID"] or "")
        for ikey, key in by_key.items():
            if ikey in message_id:
                mails[key] += 1
    return Tally(len(wanted), webhooks, mails)


def wait_delivered(platform: Platform, mailer: Mailer, keys: Iterable[Key], timeout: float) -> Tally:
    """Wait until every key got its webhook and its e-mail; then settle briefly so a late
    duplicate would be seen too."""
    wanted = list(keys)
    wait_until(
        lambda: not tally(platform, mailer, wanted).lost(wanted),
        timeout,
        f"deliveries of {wanted}: missing {tally(platform, mailer, wanted).lost(wanted)}",
        interval=1.0,
    )
    return tally(platform, mailer, wanted)
