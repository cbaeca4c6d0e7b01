"""The recipient -> channel assignment step, raced from several processes at once.

When a job ends its requesters become deliverable and each gets one delivery row
per channel that reaches them (``Deliveries.route``); then the rows are leased
and sent. Three callers do this for the same job at the same moment, each in its
own process, as in production: the run's success hook (``deliver_now`` with the
outcome), the API's background worker (``deliver_now``, as after a cache hit or
a run it saw finish) and the delivery sensor (its release of the finished run,
then ``deliver_due`` every tick). Meanwhile colleagues join the job one by one
(``add_requester``, as the API records a requester of a run it still sees
running). Real ledgers (SQLite file, PostgreSQL schema), real webhook receiver
and SMTP server, real local storage holding the file.

What must hold: every (recipient, channel) has exactly one delivery row and is
sent exactly once, the colleagues who joined while it all ran included. The
sensor releases a finished run once (its cursor then moves past the run), so a
colleague who joins after every release must be deliverable by the ledger itself.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from orchestration.delivery.deliver import deliver_due
from orchestration.ledger import Ledger
from tests.delivery.conftest import T0, race, settings_for, storage_at, subscribe_requester
from tests.delivery.test_deliver import KEY, store_report
from tests.ledger_rows import subscribe
from tests.services.http_receiver import HttpReceiver
from tests.services.smtp import SmtpRecorder

JOB = "run-shared"
FILENAME = "storyboard-usage_1_2026-06.xlsx"
REQUESTERS = 40  # users 1..40 asked while the run was going (waiting)
COLLEAGUES = 24  # users 1001..1024 join while the job is being assigned and sent
WINDOW = 2.4  # seconds the racers keep going after the common start

ASSIGNER = """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from orchestration.delivery.deliver import deliver_due, deliver_now
from orchestration.ledger import Asked, Asker, Ledger
from tests.delivery.conftest import settings_for, storage_at

mode, url, home, notify_url, smtp_url, job, key, filename, colleagues, window = sys.argv[1:]
box = Ledger(url)
storage = storage_at(Path(home))
# A generous webhook timeout: six processes on two shared cores must not turn a slow answer into a retry.
settings = settings_for(Path(home), notify_url=notify_url, smtp_url=smtp_url, notify_timeout_seconds=10.0)
outcome = ("succeeded", key, filename)
box.deliveries.list(limit=1)  # connect before the common start
print("ready", flush=True)  # imported and connected: race() answers with the common start
begin = float(sys.stdin.readline())
time.sleep(max(0.0, begin - time.time()))
claimed, sent, joined = 0, 0, []

def count(stats):
    global claimed, sent
    if stats is not None:
        claimed += stats.claimed
        sent += stats.sent

if mode == "hook":  # the run's success hook: record the outcome, deliver the job's rows at once
    count(deliver_now(box, storage, settings, job, completed=outcome, claim_id=None))
elif mode == "api":  # the API's background worker, submitted again and again
    while time.time() < begin + float(window):
        count(deliver_now(box, storage, settings, job))
        time.sleep(0.05)
elif mode == "sensor":  # the delivery sensor: releases the finished run on its first tick only
    box.requests.complete_job(job, outcome)
    while time.time() < begin + float(window):
        count(deliver_due(box, storage, settings, datetime.now(UTC)))
        time.sleep(0.1)
elif mode == "joiner":  # colleagues asking for the same report join the job one after another
    asked = Asked(1, "storyboard-usage", period="06/2026")
    for n in range(int(colleagues)):
        user = 1001 + n
        if box.requests.add_requester(asked, Asker(user, "acme", f"user{user}@acme.test"), job_id=job):
            joined.append(user)
        time.sleep(float(window) * 0.8 / int(colleagues))
print(json.dumps({"claimed": claimed, "sent": sent, "joined": joined}))
"""


def test_assignment_and_claims_racing_with_a_joining_colleague_send_each_recipient_channel_once(
    outbox: Ledger, http_receiver: HttpReceiver, smtp_server: SmtpRecorder, tmp_path: Path
) -> None:
    store_report(storage_at(tmp_path), tmp_path)
    for user in range(1, REQUESTERS + 1):
        subscribe_requester(outbox, JOB, user)
    common = [
        outbox.url,
        str(tmp_path),
        http_receiver.url,
        smtp_server.url,
        JOB,
        KEY,
        FILENAME,
        str(COLLEAGUES),
        str(WINDOW),
    ]
    modes = ["hook", "api", "sensor", "joiner", "api", "sensor"]
    results = race(ASSIGNER, [[mode, *common] for mode in modes])
    (joined,) = [result["joined"] for mode, result in zip(modes, results, strict=True) if mode == "joiner"]
    assert len(joined) == COLLEAGUES
    # The sensor's next tick (its cursor is past the run: it only delivers what is due).
    settings = settings_for(
        tmp_path, notify_url=http_receiver.url, smtp_url=smtp_server.url, notify_timeout_seconds=10.0
    )
    last = deliver_due(outbox, storage_at(tmp_path), settings, datetime.now(UTC))

    everyone = set(range(1, REQUESTERS + 1)) | set(joined)
    rows = outbox.deliveries.list(job_id=JOB, limit=1000)
    per_pair = Counter((n.recipient_user_id, n.channel) for n in rows)
    assert set(per_pair) == {(user, channel) for user in everyone for channel in ("webhook", "email")}, sorted(
        (n.recipient_user_id, n.channel, n.state) for n in rows if n.channel is None
    )
    assert set(per_pair.values()) == {1}  # one delivery row per (recipient, channel)
    assert {n.state for n in rows} == {"sent"}
    webhooks = Counter(r.json()["userId"] for r in http_receiver.requests if 200 <= r.status < 300)
    mails = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert webhooks == dict.fromkeys(everyone, 1)
    assert mails == {f"user{user}@acme.test": 1 for user in everyone}
    # Every row was leased once: what the racers and the last tick claimed is what was sent.
    claimed = sum(result["claimed"] for result in results) + last.claimed
    assert claimed == sum(result["sent"] for result in results) + last.sent == 2 * len(everyone)
    # They really raced: more than one kind of sender sent some of the rows.
    senders = Counter[str]()
    for mode, result in zip(modes, results, strict=True):
        senders[mode] += result["sent"]
    assert sum(1 for kind in ("hook", "api", "sensor") if senders[kind]) >= 2, senders


def test_a_colleague_who_joins_after_the_outcome_is_recorded_is_deliverable_at_once(outbox: Ledger) -> None:
    """The sequence the race above hits: the job's outcome is in the ledger (the hook or the sensor
    released it), Dagster still reports the run running, a colleague joins."""
    who = dict(institution_id=1, subdomain="acme", report="storyboard-usage", period="06/2026", now=T0)
    assert subscribe(outbox, job_id=JOB, recipient_user_id=1, **who)
    assert outbox.requests.complete_job(JOB, ("succeeded", KEY, FILENAME), now=T0) == 1
    assert subscribe(outbox, job_id=JOB, recipient_user_id=2, **who)
    assert [(n.recipient_user_id, n.state) for n in outbox.deliveries.list(job_id=JOB)] == [
        (2, "pending"),
        (1, "pending"),
    ]
    assert outbox.deliveries.has_undelivered(JOB)
