"""A new channel is one registered factory: delivered exactly once, with no ledger edit.

The recorder below is the whole channel (what a Slack or in-app push module under
``orchestration/delivery/channels/`` would be); it rides the same routing, leases,
backoff and fast path as the webhook and e-mail, and fails once to prove its retry
is its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from orchestration.delivery import channels
from orchestration.delivery.channels import ChannelContext, Link, RetryableError
from orchestration.delivery.deliver import deliver_due, deliver_now
from orchestration.delivery.storage import LocalReportStorage
from orchestration.ledger import Ledger, Notification, Recipient
from tests.delivery.conftest import T0, enqueue_row, settings_for
from tests.delivery.test_deliver import store_report
from tests.services.http_receiver import HttpReceiver


class Recorder:
    """The test channel: records what it sends, refuses the first attempt."""

    name = "recorder"

    def __init__(self, sent: list[tuple[str, int, bool]]) -> None:
        self.sent = sent

    def applies_to(self, recipient: Recipient) -> bool:
        return recipient.recipient_user_id != 99  # somebody it cannot reach

    def send(self, notification: Notification, link: Link | None) -> None:
        if not self.sent:
            self.sent.append(("refused", 0, False))
            raise RetryableError("recorder: first attempt refused")
        self.sent.append((notification.job_id, notification.recipient_user_id, link is not None))

    def close(self) -> None:
        pass


@pytest.fixture
def recorded() -> Iterator[list[tuple[str, int, bool]]]:
    sent: list[tuple[str, int, bool]] = []

    @channels.register("recorder")
    def recorder(context: ChannelContext) -> Recorder:
        return Recorder(sent)

    yield sent
    channels.unregister("recorder")


def test_a_registered_channel_is_delivered_exactly_once_next_to_the_webhook(
    outbox: Ledger,
    local_storage: LocalReportStorage,
    http_receiver: HttpReceiver,
    recorded: list[tuple[str, int, bool]],
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url)
    store_report(local_storage, tmp_path)
    enqueue_row(outbox, job_id="run-1", user=1)
    enqueue_row(outbox, job_id="run-1", user=99)  # only the webhook reaches this one

    first = deliver_due(outbox, local_storage, settings, T0)
    assert (first.sent, first.retrying, first.channel_sends) == (2, 1, {"webhook": 2})
    for minutes in (1, 2, 3):  # the recorder's retry is due after its own backoff; nothing is sent twice
        deliver_due(outbox, local_storage, settings, T0 + timedelta(minutes=minutes))
    assert recorded == [("refused", 0, False), ("run-1", 1, True)]
    assert sorted(int(call.json()["userId"]) for call in http_receiver.requests) == [1, 99]
    rows = {(n.recipient_user_id, n.channel): n for n in outbox.deliveries.list(job_id="run-1")}
    assert set(rows) == {(1, "webhook"), (1, "recorder"), (99, "webhook")}
    assert rows[(1, "recorder")].state == "sent" and rows[(1, "recorder")].attempts == 1
    assert rows[(1, "webhook")].attempts == 0  # the webhook was never re-sent for the recorder's failure


def test_the_fast_path_sends_a_registered_channel_once(
    outbox: Ledger, local_storage: LocalReportStorage, recorded: list[tuple[str, int, bool]], tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)  # no webhook, no e-mail: the recorder alone
    store_report(local_storage, tmp_path)
    recorded.append(("warm", 0, False))  # no refusal this time
    enqueue_row(outbox, job_id="run-2", user=5)
    stats = deliver_now(outbox, local_storage, settings, "run-2")
    assert stats is not None and stats.channel_sends == {"recorder": 1}
    assert deliver_now(outbox, local_storage, settings, "run-2") is None  # nothing left: not sent again
    assert deliver_due(outbox, local_storage, settings, T0 + timedelta(days=1)).sent == 0
    assert recorded == [("warm", 0, False), ("run-2", 5, True)]
