"""The notification outbox on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestration.ledger import Ledger, idempotency_key
from tests.delivery.conftest import T0, race
from tests.delivery.conftest import enqueue_row as enqueue
from tests.ledger_rows import routed, subscribe


def test_enqueue_is_idempotent_per_job_and_recipient(outbox: Ledger) -> None:
    assert enqueue(outbox) is True
    assert enqueue(outbox) is False
    assert enqueue(outbox, email="other@acme.test") is False
    assert enqueue(outbox, user=43) is True
    assert enqueue(outbox, job_id="run-2") is True
    rows = outbox.deliveries.list()
    assert len(rows) == 3
    first = outbox.deliveries.list(job_id="run-1", recipient_user_id=42)[0]
    assert first.email == "ana@acme.test"  # the second enqueue changed nothing
    assert first.idempotency_key == idempotency_key("run-1", 42)
    assert (first.state, first.attempts, first.created_at, first.next_attempt_at) == ("pending", 0, T0, T0)
    assert outbox.requests.request_of("run-1", 42, 1) and not outbox.requests.request_of("run-1", 44, 1)
    assert [r.user_id for r in outbox.requests.recipients("run-1")] == [42, 43]
    assert outbox.deliveries.counts()["pending"] == 3


def test_cache_hits_use_a_distinct_job_id(outbox: Ledger) -> None:
    assert enqueue(outbox, job_id="run-1")
    # The same user asks again later and is served from cache: a new notification.
    assert enqueue(outbox, job_id="cache:abcd:9f1c", cached=True)
    assert enqueue(outbox, job_id="cache:abcd:77aa", cached=True)
    rows = outbox.deliveries.list(recipient_user_id=42)
    assert len({r.idempotency_key for r in rows}) == 3
    assert sorted(r.cached for r in rows) == [False, True, True]


def test_enqueue_validates_the_outcome(outbox: Ledger) -> None:
    with pytest.raises(ValueError):
        enqueue(outbox, status_of_job="done")
    with pytest.raises(ValueError):
        enqueue(outbox, storage_key=None)
    assert enqueue(outbox, status_of_job="failed", storage_key=None, filename=None)
    assert outbox.deliveries.list()[0].storage_key is None


def test_claim_leases_due_rows_once(outbox: Ledger) -> None:
    for user in (1, 2, 3):
        enqueue(outbox, user=user)
    subscribe(outbox, job_id="run-2", recipient_user_id=4, institution_id=1, subdomain="acme", report="catalog")
    assert routed(outbox, T0).claim_due(T0 - timedelta(seconds=1), 10, 60) == []
    first = routed(outbox, T0).claim_due(T0, 2, 60)
    assert [n.recipient_user_id for n in first] == [1, 2]
    assert all(n.state == "sending" and n.lease_until == T0 + timedelta(seconds=60) for n in first)
    second = routed(outbox, T0).claim_due(T0, 10, 60)
    assert [n.recipient_user_id for n in second] == [3]
    assert routed(outbox, T0 + timedelta(seconds=59)).claim_due(T0 + timedelta(seconds=59), 10, 60) == []


def test_expired_lease_is_reclaimed_and_counts_as_an_attempt(outbox: Ledger) -> None:
    enqueue(outbox)
    (claimed,) = routed(outbox, T0).claim_due(T0, 10, 30)
    # The worker dies here: no mark_* call.
    assert routed(outbox, T0 + timedelta(seconds=29)).claim_due(T0 + timedelta(seconds=29), 10, 30) == []
    (again,) = routed(outbox, T0 + timedelta(seconds=30)).claim_due(T0 + timedelta(seconds=30), 10, 30)
    assert again.id == claimed.id
    assert again.idempotency_key == claimed.idempotency_key
    assert again.attempts == 1 and "lease expired" in (again.last_error or "")


def test_lost_worker_on_last_attempt_goes_dead(outbox: Ledger) -> None:
    enqueue(outbox)
    now = T0
    for _ in range(outbox.deliveries.max_attempts):  # every lost lease is one spent attempt
        assert len(routed(outbox, now).claim_due(now, 10, 30)) == 1
        now += timedelta(seconds=31)
    assert routed(outbox, now).claim_due(now, 10, 30) == []
    (row,) = outbox.deliveries.list()
    assert (row.state, row.attempts) == ("dead", outbox.deliveries.max_attempts)


def test_failures_back_off_exponentially_then_die(outbox: Ledger) -> None:
    enqueue(outbox)
    now = T0
    delays = []
    for attempt in range(1, outbox.deliveries.max_attempts + 1):
        (n,) = routed(outbox, now).claim_due(now, 10, 60)
        state = outbox.deliveries.mark_failed(n.id, f"boom {attempt}", now)
        row = outbox.deliveries.get(n.id)
        assert row is not None and row.attempts == attempt and row.last_error == f"boom {attempt}"
        if attempt < outbox.deliveries.max_attempts:
            assert state == "pending"
            delays.append((row.next_attempt_at - now).total_seconds())
            assert (
                routed(outbox, row.next_attempt_at - timedelta(seconds=1)).claim_due(
                    row.next_attempt_at - timedelta(seconds=1), 10, 60
                )
                == []
            )
            now = row.next_attempt_at
        else:
            assert state == "dead"
    assert delays == [
        outbox.deliveries.backoff_seconds * 2 ** (a - 1) for a in range(1, outbox.deliveries.max_attempts)
    ]
    assert routed(outbox, now + timedelta(days=1)).claim_due(now + timedelta(days=1), 10, 60) == []
    assert [r.id for r in outbox.deliveries.list("dead")] == [n.id]


def test_permanent_failure_is_dead_at_once_and_retry_revives(outbox: Ledger) -> None:
    enqueue(outbox)
    (n,) = routed(outbox, T0).claim_due(T0, 10, 60)
    assert outbox.deliveries.mark_failed(n.id, "HTTP 400", T0, permanent=True) == "dead"
    assert outbox.deliveries.get(n.id).attempts == 1  # type: ignore[union-attr]
    assert outbox.deliveries.retry(n.id, now=T0 + timedelta(hours=1)) is True
    revived = outbox.deliveries.get(n.id)
    assert revived is not None and (revived.state, revived.attempts) == ("pending", 0)
    assert [r.id for r in routed(outbox, T0 + timedelta(hours=1)).claim_due(T0 + timedelta(hours=1), 10, 60)] == [n.id]
    outbox.deliveries.mark_sent(n.id, T0 + timedelta(hours=1))
    assert outbox.deliveries.retry(n.id) is False  # a sent row is never re-sent by accident
    assert outbox.deliveries.get(n.id).state == "sent"  # type: ignore[union-attr]


def test_retry_after_is_honoured(outbox: Ledger) -> None:
    enqueue(outbox)
    (n,) = routed(outbox, T0).claim_due(T0, 10, 60)
    outbox.deliveries.mark_failed(n.id, "HTTP 429", T0, retry_after=120)
    assert outbox.deliveries.get(n.id).next_attempt_at == T0 + timedelta(seconds=120)  # type: ignore[union-attr]


def test_each_channel_is_its_own_delivery_sent_once(outbox: Ledger) -> None:
    enqueue(outbox)
    webhook, email = routed(outbox, T0, ("webhook", "email")).claim_due(T0, 10, 60)
    assert (webhook.channel, email.channel) == ("webhook", "email")
    assert webhook.idempotency_key == email.idempotency_key  # one notification, two channels
    outbox.deliveries.mark_sent(webhook.id, T0)  # type: ignore[arg-type]
    assert outbox.deliveries.mark_failed(email.id, "smtp down", T0) == "pending"  # type: ignore[arg-type]
    later = T0 + timedelta(hours=1)
    (again,) = routed(outbox, later, ("webhook", "email", "sms")).claim_due(later, 10, 60)
    assert (again.id, again.channel, again.attempts, again.last_error) == (email.id, "email", 1, "smtp down")
    outbox.deliveries.mark_sent(email.id, later)  # type: ignore[arg-type]
    done = outbox.deliveries.get(email.id)  # type: ignore[arg-type]
    assert done is not None and (done.state, done.sent_at, done.lease_until) == ("sent", later, None)
    # A late failure report from a stale worker cannot undo the success.
    assert outbox.deliveries.mark_failed(email.id, "late", T0) == "sent"  # type: ignore[arg-type]
    sent = outbox.deliveries.get(webhook.id)  # type: ignore[arg-type]
    assert sent is not None and (sent.state, sent.sent_at, sent.attempts) == ("sent", T0, 0)
    # Routed once: a channel enabled later ("sms" above) does not re-notify a routed recipient.
    assert sorted(str(n.channel) for n in outbox.deliveries.list(job_id="run-1")) == ["email", "webhook"]


def test_waiting_subscribers_are_released_when_the_job_ends(outbox: Ledger) -> None:
    assert subscribe(
        outbox,
        job_id="run-9",
        recipient_user_id=1,
        institution_id=1,
        subdomain="acme",
        report="catalog",
        email="a@acme.test",
        now=T0,
    )
    assert subscribe(
        outbox, job_id="run-9", recipient_user_id=2, institution_id=1, subdomain="acme", report="catalog", now=T0
    )
    assert not subscribe(
        outbox, job_id="run-9", recipient_user_id=2, institution_id=1, subdomain="acme", report="catalog", now=T0
    )
    assert (
        routed(outbox, T0 + timedelta(hours=1)).claim_due(T0 + timedelta(hours=1), 10, 60) == []
    )  # nothing to say yet
    assert [r.user_id for r in outbox.requests.recipients("run-9")] == [1, 2]
    # The run's own requester is enqueued by the sensor; joiners already have rows.
    assert not enqueue(outbox, job_id="run-9", user=1, report="catalog")
    catalog = ("succeeded", "catalog/institution=1/2026-06/catalog_1_2026-06.xlsx", "catalog_1_2026-06.xlsx")
    released = outbox.requests.complete_job("run-9", catalog, now=T0 + timedelta(minutes=2))
    assert released == 2
    assert outbox.requests.complete_job("run-9", ("failed", None, None)) == 0  # only waiting rows move
    claimed = routed(outbox, T0 + timedelta(minutes=2)).claim_due(T0 + timedelta(minutes=2), 10, 60)
    assert [(n.recipient_user_id, n.status_of_job, n.filename) for n in claimed] == [
        (1, "succeeded", "catalog_1_2026-06.xlsx"),
        (2, "succeeded", "catalog_1_2026-06.xlsx"),
    ]


def test_create_schema_twice_and_reopen(outbox_url: str) -> None:
    first = Ledger(outbox_url)
    first.migrate()
    first.migrate()
    enqueue(first)
    second = Ledger(outbox_url)
    second.migrate()
    assert [n.recipient_user_id for n in second.deliveries.list()] == [42]
    first.dispose()
    second.dispose()


CLAIMER = """
import json, sys, time
from datetime import datetime
from orchestration.ledger import Ledger
box = Ledger(sys.argv[1])
now = datetime.fromisoformat(sys.argv[2])
box.deliveries.list(limit=1)  # connect before the common start
print("ready", flush=True)  # imported and connected: race() answers with the common start
time.sleep(max(0.0, float(sys.stdin.readline()) - time.time()))
claimed = []
while True:
    batch = box.deliveries.claim_due(now, 3, 600)
    if not batch:
        break
    claimed += [n.id for n in batch]
    for n in batch:
        time.sleep(0.003)  # "sending"
        box.deliveries.mark_sent(n.id, now)
print(json.dumps(claimed))
"""


def test_concurrent_claimers_in_separate_processes_never_share_a_row(outbox: Ledger) -> None:
    for user in range(120):
        enqueue(outbox, user=user)
    routed(outbox, T0)
    results = race(CLAIMER, [[outbox.url, T0.isoformat()]] * 3)  # all workers begin claiming at the same moment
    claimed = [i for ids in results for i in ids]
    assert len(claimed) == 120 and len(set(claimed)) == 120
    assert sum(1 for ids in results if ids) >= 2  # they really competed
    assert outbox.deliveries.counts()["sent"] == 120


def test_a_huge_retry_after_is_capped_not_an_overflow(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    from orchestration.ledger import Ledger
    from orchestration.ledger.deliveries import MAX_RETRY_DELAY_SECONDS

    box = Ledger(f"sqlite:///{tmp_path / 'o.sqlite'}")
    box.migrate()
    now = datetime(2026, 11, 1, tzinfo=UTC)
    enqueue(
        box,
        job_id="r",
        recipient_user_id=1,
        institution_id=1,
        subdomain="d",
        report="catalog",
        status_of_job="failed",
        now=now,
    )
    (row,) = routed(box, now).claim_due(now)
    assert box.deliveries.mark_failed(row.id, "429", now, retry_after=1e12) == "pending"
    assert not routed(box, now + timedelta(seconds=MAX_RETRY_DELAY_SECONDS - 1)).claim_due(
        now + timedelta(seconds=MAX_RETRY_DELAY_SECONDS - 1)
    )
    assert [
        r.id
        for r in routed(box, now + timedelta(seconds=MAX_RETRY_DELAY_SECONDS)).claim_due(
            now + timedelta(seconds=MAX_RETRY_DELAY_SECONDS)
        )
    ] == [row.id]
