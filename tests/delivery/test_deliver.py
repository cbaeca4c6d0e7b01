"""The delivery loop end to end: outbox -> fresh link -> webhook + e-mail, with real servers."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestration.delivery import links
from orchestration.delivery.channels.webhook import WebhookChannel, verify_signature
from orchestration.delivery.deliver import DeliveryStats, deliver_due
from orchestration.delivery.storage import LocalReportStorage, ReportStorage, S3ReportStorage, report_key
from orchestration.ledger import Ledger
from orchestration.settings import Settings
from tests.delivery.conftest import T0, enqueue_row, settings_for
from tests.ledger_rows import routed
from tests.services.http_receiver import HttpReceiver
from tests.services.smtp import SmtpRecorder

KEY = report_key("storyboard-usage", 1, "2026-06", "xlsx")
CONTENT = b"PK\x03\x04 pretend this is a workbook"


def store_report(storage: ReportStorage, tmp_path: Path, key: str = KEY) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(CONTENT)
    storage.put_file(source, key, "application/octet-stream")


def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def run_until_idle(
    outbox: Ledger,
    storage: ReportStorage,
    settings: Settings,
    start: datetime,
    step: timedelta = timedelta(minutes=10),
    passes: int = 12,
) -> tuple[datetime, list[DeliveryStats]]:
    """Call deliver_due like the sensor would, with the clock advancing between ticks."""
    now, history = start, []
    for _ in range(passes):
        history.append(deliver_due(outbox, storage, settings, now))
        if not outbox.deliveries.list(["pending", "sending"]):
            break
        now += step
    return now, history


def test_retries_end_in_exactly_one_delivery_per_recipient(
    outbox: Ledger,
    local_storage: LocalReportStorage,
    http_receiver: HttpReceiver,
    smtp_server: SmtpRecorder,
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url, smtp_url=smtp_server.url)
    store_report(local_storage, tmp_path)
    for user in (10, 11, 12):
        enqueue_row(outbox, user=user, email=f"u{user}@acme.test")
    enqueue_row(outbox, user=10, email="u10@acme.test")  # a duplicate enqueue from a repeated tick
    http_receiver.fail_next(2, 500)

    _, history = run_until_idle(outbox, local_storage, settings, T0)

    # 3 requesters x (webhook, e-mail): the e-mails and one webhook go at once, two webhooks retry.
    assert history[0].claimed == 6 and history[0].sent == 4 and history[0].retrying == 2
    assert sum(s.sent for s in history) == 6
    rows = outbox.deliveries.list()
    assert {r.state for r in rows} == {"sent"}
    keys = {r.idempotency_key for r in rows}
    # The receiver saw 5 calls (2 failed) but processed exactly one per key, with no duplicate.
    assert len(http_receiver.requests) == 5
    assert [r.status for r in http_receiver.requests[:2]] == [500, 500]
    assert set(http_receiver.processed) == keys and http_receiver.duplicates == []
    per_key = Counter(r.idempotency_key for r in http_receiver.requests)
    assert sorted(per_key.values()) == [1, 2, 2]
    for request in http_receiver.requests:
        assert verify_signature(request.body, request.headers["x-signature"], settings.notify_secret)
        body = request.json()
        assert body["status"] == "succeeded" and body["typeReport"] == "storyboard-usage"
        assert request.idempotency_key == next(r.idempotency_key for r in rows if r.recipient_user_id == body["userId"])
    # E-mail succeeded on the first pass and was not re-sent while the webhook was retried.
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["u10@acme.test", "u11@acme.test", "u12@acme.test"]
    assert all(r.sent_at == T0 and r.attempts == 0 for r in rows if r.channel == "email")


def test_each_attempt_gets_a_fresh_link_that_downloads_the_file(
    sqlite_outbox: Ledger, local_storage: LocalReportStorage, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url, link_ttl_seconds=3600)
    store_report(local_storage, tmp_path)
    enqueue_row(sqlite_outbox)
    http_receiver.fail_next(1, 503)
    deliver_due(sqlite_outbox, local_storage, settings, T0)
    later = T0 + timedelta(hours=2)
    deliver_due(sqlite_outbox, local_storage, settings, later)
    first, second = (r.json() for r in http_receiver.requests)
    assert first["url"] != second["url"]
    assert second["expiresAt"] == (later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    verified = links.verify_url(second["url"], settings.link_secret, later + timedelta(minutes=59))
    assert verified.key == KEY and verified.filename == "storyboard-usage_1_2026-06.xlsx"
    with local_storage.open(verified.key) as fh:
        assert fh.read() == CONTENT
    # The first link has expired by now; only the fresh one works.
    with pytest.raises(links.LinkExpired):
        links.verify_url(first["url"], settings.link_secret, later + timedelta(minutes=59))


def test_failed_job_notifies_without_a_link(
    sqlite_outbox: Ledger,
    local_storage: LocalReportStorage,
    http_receiver: HttpReceiver,
    smtp_server: SmtpRecorder,
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url, smtp_url=smtp_server.url)
    enqueue_row(
        sqlite_outbox, job_id="run-f", report="catalog", status_of_job="failed", storage_key=None, filename=None
    )
    stats = deliver_due(sqlite_outbox, local_storage, settings, T0)
    assert (stats.sent, stats.channel_sends) == (2, {"webhook": 1, "email": 1})
    body = http_receiver.requests[0].json()
    assert (body["status"], body["url"], body["expiresAt"], body["jobId"]) == ("failed", None, None, "run-f")
    assert smtp_server.messages[0].message["Subject"] == "Seu relatório catalog não pôde ser gerado"


def test_dead_letter_after_max_attempts_and_manual_retry(
    outbox: Ledger, local_storage: LocalReportStorage, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url)
    store_report(local_storage, tmp_path)
    enqueue_row(outbox)
    http_receiver.always(500)
    now, history = run_until_idle(outbox, local_storage, settings, T0, step=timedelta(hours=1))
    (row,) = outbox.deliveries.list("dead")
    assert row.attempts == outbox.deliveries.max_attempts == 4 and "HTTP 500" in (row.last_error or "")
    assert sum(s.dead for s in history) == 1
    assert len(http_receiver.requests) == 4
    assert {r.idempotency_key for r in http_receiver.requests} == {row.idempotency_key}
    assert deliver_due(outbox, local_storage, settings, now + timedelta(days=1)).claimed == 0

    http_receiver.reset()
    assert outbox.deliveries.retry(row.id, now=now)
    stats = deliver_due(outbox, local_storage, settings, now)
    assert stats.sent == 1
    assert outbox.deliveries.get(row.id).state == "sent"  # type: ignore[union-attr]
    assert list(http_receiver.processed) == [row.idempotency_key]


def test_client_error_is_dead_at_once_but_other_channels_still_deliver(
    sqlite_outbox: Ledger,
    local_storage: LocalReportStorage,
    http_receiver: HttpReceiver,
    smtp_server: SmtpRecorder,
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url, smtp_url=smtp_server.url)
    store_report(local_storage, tmp_path)
    enqueue_row(sqlite_outbox)
    http_receiver.always(400)
    stats = deliver_due(sqlite_outbox, local_storage, settings, T0)
    assert (stats.dead, stats.retrying, stats.channel_sends) == (1, 0, {"email": 1})
    rows = {n.channel: n for n in sqlite_outbox.deliveries.list()}
    row = rows["webhook"]
    assert (row.state, row.attempts, rows["email"].state, rows["email"].sent_at) == ("dead", 1, "sent", T0)
    assert len(http_receiver.requests) == 1 and len(smtp_server.messages) == 1
    # Retrying the dead row later sends only the channel that has not succeeded.
    http_receiver.reset()
    assert row.id is not None and sqlite_outbox.deliveries.retry(row.id, now=T0)
    deliver_due(sqlite_outbox, local_storage, settings, T0 + timedelta(minutes=1))
    assert len(http_receiver.processed) == 1 and len(smtp_server.messages) == 1
    assert sqlite_outbox.deliveries.get(row.id).state == "sent"  # type: ignore[union-attr]


def test_crash_between_send_and_mark_resends_with_the_same_key(
    outbox: Ledger, local_storage: LocalReportStorage, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url)
    store_report(local_storage, tmp_path)
    enqueue_row(outbox)
    # A worker claims the row, delivers it, and dies before recording anything.
    (claimed,) = routed(outbox, T0).claim_due(T0, 10, lease_seconds=120)
    WebhookChannel(http_receiver.url, settings.notify_secret).send(claimed, None)
    assert deliver_due(outbox, local_storage, settings, T0 + timedelta(seconds=60)).claimed == 0  # still leased
    stats = deliver_due(outbox, local_storage, settings, T0 + timedelta(seconds=121))
    assert (stats.claimed, stats.sent) == (1, 1)
    assert [r.idempotency_key for r in http_receiver.requests] == [claimed.idempotency_key] * 2
    assert list(http_receiver.processed) == [claimed.idempotency_key]
    assert len(http_receiver.duplicates) == 1  # recognised and dropped by the receiver
    row = outbox.deliveries.get(claimed.id)
    assert row is not None and (row.state, row.attempts) == ("sent", 1)


def test_timed_out_call_that_the_receiver_processed_is_deduplicated(
    sqlite_outbox: Ledger, local_storage: LocalReportStorage, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url, notify_timeout_seconds=0.3)
    store_report(local_storage, tmp_path)
    enqueue_row(sqlite_outbox)
    http_receiver.hang_next(1, seconds=1.0)
    first = deliver_due(sqlite_outbox, local_storage, settings, T0)
    assert first.retrying == 1 and "timeout" in first.errors[0]
    second = deliver_due(sqlite_outbox, local_storage, settings, T0 + timedelta(minutes=1))
    assert second.sent == 1
    _wait_for(lambda: len(http_receiver.requests) == 2)
    assert len(http_receiver.processed) == 1 and len(http_receiver.duplicates) == 1


def test_missing_file_and_unreachable_recipient_go_dead(
    sqlite_outbox: Ledger, local_storage: LocalReportStorage, smtp_server: SmtpRecorder, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, smtp_url=smtp_server.url)
    enqueue_row(sqlite_outbox, user=1)  # its file was never stored
    enqueue_row(sqlite_outbox, user=2, email=None, status_of_job="failed", storage_key=None, filename=None)
    stats = deliver_due(sqlite_outbox, local_storage, settings, T0)
    assert stats.dead == 2 and smtp_server.messages == []
    errors = {r.recipient_user_id: r.last_error for r in sqlite_outbox.deliveries.list("dead")}
    assert "missing" in (errors[1] or "") and "no enabled channel" in (errors[2] or "")


def test_no_configured_channel_leaves_rows_waiting(
    sqlite_outbox: Ledger, local_storage: LocalReportStorage, tmp_path: Path
) -> None:
    enqueue_row(sqlite_outbox)
    stats = deliver_due(sqlite_outbox, local_storage, settings_for(tmp_path), T0)
    assert stats.disabled and stats.claimed == 0
    assert sqlite_outbox.deliveries.list()[0].state == "pending"


def test_delivery_with_s3_storage_sends_a_presigned_link(
    sqlite_outbox: Ledger, s3_bucket: str, s3_client: Any, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    storage = S3ReportStorage(s3_bucket, "reports", client=s3_client)
    settings = settings_for(tmp_path, notify_url=http_receiver.url)
    store_report(storage, tmp_path)
    enqueue_row(sqlite_outbox, cached=True, job_id="cache:0123456789abcdef:req-1")
    assert deliver_due(sqlite_outbox, storage, settings, T0).sent == 1
    body = http_receiver.requests[0].json()
    assert body["cached"] is True and body["jobId"] == "cache:0123456789abcdef:req-1"
    assert body["expiresAt"] == (T0 + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = httpx.get(body["url"])
    assert response.status_code == 200 and response.content == CONTENT
    assert 'filename="storyboard-usage_1_2026-06.xlsx"' in response.headers["content-disposition"]


def test_time_budget_releases_unstarted_rows(
    sqlite_outbox: Ledger, local_storage: LocalReportStorage, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, notify_url=http_receiver.url)
    store_report(local_storage, tmp_path)
    for user in range(5):
        enqueue_row(sqlite_outbox, user=user)
    http_receiver.hang_next(1, seconds=0.4)  # the first call eats the whole budget
    stats = deliver_due(sqlite_outbox, local_storage, settings, T0, time_budget_seconds=0.2)
    assert (stats.claimed, stats.sent, stats.released) == (1, 1, 4)
    pending = sqlite_outbox.deliveries.list("pending")
    assert len(pending) == 4 and all(n.attempts == 0 and n.lease_until is None for n in pending)
    assert deliver_due(sqlite_outbox, local_storage, settings, T0).sent == 4
