"""The fast path: one job's rows claimed and delivered at once, beside the sensor's pass.

Real ledgers (SQLite file, PostgreSQL schema), a real webhook receiver and SMTP
server; the sensor and the fast path race in separate processes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orchestration.delivery.deliver import deliver_due, deliver_now
from orchestration.delivery.storage import LocalReportStorage
from orchestration.ledger import Ledger
from orchestration.ledger.records import Asked, Asker
from tests.delivery.conftest import T0, enqueue_row, race, settings_for, subscribe_requester
from tests.delivery.test_deliver import KEY, store_report
from tests.ledger_rows import routed
from tests.services.http_receiver import HttpReceiver
from tests.services.smtp import SmtpRecorder

FILENAME = "storyboard-usage_1_2026-06.xlsx"


def test_claim_job_due_takes_only_that_jobs_due_rows(outbox: Ledger) -> None:
    for user in (1, 2, 3):
        enqueue_row(outbox, job_id="run-a", user=user)
    for user in (1, 2):
        enqueue_row(outbox, job_id="run-b", user=user)
    subscribe_requester(outbox, "run-c", 5)  # run-c is still going: its requester waits, nothing to say yet

    first = routed(outbox, T0).claim_job_due("run-a", T0, 2, 60)
    assert [(n.job_id, n.recipient_user_id) for n in first] == [("run-a", 1), ("run-a", 2)]
    assert all(n.state == "sending" and n.lease_until == T0 + timedelta(seconds=60) for n in first)
    assert [n.recipient_user_id for n in outbox.deliveries.claim_job_due("run-a", T0, 10, 60)] == [3]
    assert outbox.deliveries.claim_job_due("run-a", T0, 10, 60) == []
    assert outbox.deliveries.claim_job_due("run-c", T0, 10, 60) == []
    # The sensor's pass sees only what the fast path left: run-b.
    assert {(n.job_id, n.recipient_user_id) for n in routed(outbox, T0).claim_due(T0, 10, 60)} == {
        ("run-b", 1),
        ("run-b", 2),
    }
    # A fast-path worker that died: its lease runs out and either claimer recovers the row (one attempt spent).
    recovered = outbox.deliveries.claim_job_due("run-a", T0 + timedelta(seconds=60), 10, 60)
    assert sorted(n.recipient_user_id for n in recovered) == [1, 2, 3]
    assert all(n.attempts == 1 for n in recovered)


def test_has_undelivered_sees_waiting_and_pending_rows_by_job_or_claim(outbox_url: str, outbox: Ledger) -> None:
    assert not outbox.deliveries.has_undelivered("run-x")
    subscribe_requester(outbox, "run-x", 1)
    assert outbox.deliveries.has_undelivered("run-x") and not outbox.deliveries.has_undelivered("run-y")
    # A launcher that died before publishing the run id: its requester is known by the claim only.
    store = Ledger(outbox_url)
    store.requests.add_requester(
        Asked(1, "storyboard-usage"), Asker(7, "acme"), claim_id="c" * 32, launched=True, now=T0
    )
    assert not outbox.deliveries.has_undelivered("run-z")
    assert outbox.deliveries.has_undelivered("run-z", "c" * 32)
    assert (
        outbox.requests.complete_job("run-z", ("failed", None, None), claim_id="c" * 32, now=T0) == 1
    )  # binds the claim
    assert outbox.deliveries.has_undelivered("run-z")
    (row,) = routed(outbox, T0).claim_job_due("run-z", T0, 10, 60)
    outbox.deliveries.mark_sent(row.id, T0)
    assert not outbox.deliveries.has_undelivered("run-z", "c" * 32)
    store.dispose()


def test_deliver_now_completes_the_job_and_sends_its_rows_once(
    outbox: Ledger,
    local_storage: LocalReportStorage,
    http_receiver: HttpReceiver,
    smtp_server: SmtpRecorder,
    tmp_path: Path,
) -> None:
    store_report(local_storage, tmp_path)
    settings = settings_for(tmp_path, notify_url=http_receiver.url, smtp_url=smtp_server.url)
    for user in (1, 2):
        subscribe_requester(outbox, "run-1", user)
    enqueue_row(outbox, job_id="run-other", user=9)  # another job's row: not ours to send

    stats = deliver_now(outbox, local_storage, settings, "run-1", completed=("succeeded", KEY, FILENAME))
    assert stats is not None and (stats.claimed, stats.sent) == (4, 4)  # 2 requesters x (webhook, e-mail)
    assert sorted(r.json()["userId"] for r in http_receiver.requests) == [1, 2]
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["user1@acme.test", "user2@acme.test"]
    assert [n.state for n in outbox.deliveries.list(job_id="run-other")] == ["pending"]
    # Again (a retried hook, a second API thread): nobody is waiting, nothing is sent.
    assert deliver_now(outbox, local_storage, settings, "run-1", completed=("succeeded", KEY, FILENAME)) is None
    assert len(http_receiver.requests) == 2 and len(smtp_server.messages) == 2


def test_deliver_now_never_raises_and_leaves_failures_to_the_sensor(
    outbox: Ledger, local_storage: LocalReportStorage, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    store_report(local_storage, tmp_path)
    settings = settings_for(tmp_path, notify_url=http_receiver.url)
    subscribe_requester(outbox, "run-1", 1)
    http_receiver.fail_next(1, 503)
    stats = deliver_now(outbox, local_storage, settings, "run-1", completed=("succeeded", KEY, FILENAME))
    assert stats is not None and stats.retrying == 1
    (row,) = outbox.deliveries.list(job_id="run-1")
    assert (row.state, row.attempts) == ("pending", 1)  # backing off: the sensor's next due pass sends it
    later = row.next_attempt_at + timedelta(seconds=1)
    assert deliver_due(outbox, local_storage, settings, later).sent == 1
    assert [r.status for r in http_receiver.requests] == [503, 200]
    # A broken ledger: logged, not raised (the run must not fail).
    broken = Ledger(f"sqlite:///{tmp_path / 'missing' / 'nope.sqlite'}")
    assert deliver_now(broken, local_storage, settings, "run-1", completed=("failed", None, None)) is None
    # No channel configured: nothing touched.
    subscribe_requester(outbox, "run-2", 1)
    assert deliver_now(outbox, local_storage, settings_for(tmp_path), "run-2", completed=("failed", None, None)) is None
    assert [n.state for n in outbox.deliveries.list(job_id="run-2")] == ["waiting"]


RACER = """
import json, sys, time
from datetime import datetime
from orchestration.ledger import Ledger
box = Ledger(sys.argv[1])
mode, now = sys.argv[2], datetime.fromisoformat(sys.argv[3])
box.deliveries.list(limit=1)  # connect before the common start
print("ready", flush=True)  # imported and connected: race() answers with the common start
time.sleep(max(0.0, float(sys.stdin.readline()) - time.time()))
claimed = []
while True:
    job = "run-hot" if mode == "job" else None
    batch = box.deliveries.claim_job_due(job, now, 3, 600) if job else box.deliveries.claim_due(now, 3, 600)
    if not batch:
        break
    claimed += [n.id for n in batch]
    for n in batch:
        time.sleep(0.003)  # "sending"
        box.deliveries.mark_sent(n.id, now)
print(json.dumps(claimed))
"""


def test_fast_path_and_sensor_racing_never_share_a_row(outbox: Ledger) -> None:
    """Two fast-path claimers of one job and two sensor passes, at the same moment, in separate processes."""
    for user in range(80):
        enqueue_row(outbox, job_id="run-hot", user=user)
    for user in range(20):
        enqueue_row(outbox, job_id="run-cold", user=user)
    routed(outbox, T0)
    modes = ["job", "sensor", "job", "sensor"]
    results = race(RACER, [[outbox.url, mode, T0.isoformat()] for mode in modes])
    claimed = [i for ids in results for i in ids]
    assert len(claimed) == 100 and len(set(claimed)) == 100  # every row once, none twice
    hot = {n.id for n in outbox.deliveries.list(job_id="run-hot", limit=200)}
    assert all(i in hot for mode, ids in zip(modes, results, strict=True) if mode == "job" for i in ids)
    assert any(ids for mode, ids in zip(modes, results, strict=True) if mode == "job")
    assert outbox.deliveries.counts()["sent"] == 100
