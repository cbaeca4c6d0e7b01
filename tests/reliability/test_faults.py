"""Faults with real processes, counting notifications per (job, recipient): 0 lost, 0 duplicated.

Phases, each against the shared `lxp-reports up` stack:

1. Delivery outage: the webhook receiver is down (connection refused) and the SMTP
   server is down while a run finishes; the receiver comes back answering 500 three
   times, then 200, and the SMTP server comes back.
2. Processes killed mid-run: while two reports run, the API child (`kill -9`, issue 10
   #3: it used to take the whole stack and the runs down) and the Dagster daemon. The
   supervisor restarts each; both runs succeed and are notified once.
3. Warehouse missing, then corrupt: requests answer 4xx/503 (never 500) or the run fails
   and its requester is told once; with the file back, reports work again.
4. A run worker killed mid-run together with the code server that started it (the OOM
   killer taking both, or a code-server crash and then its orphaned worker): run monitoring
   marks the run failed (it used to stay STARTED for ever, its requester never told), the
   requester is told once, and asking again launches a new run that succeeds. (A worker
   killed alone is reported by its code server, Dagster's own watch.)

(Storage down during a run's write: test_storage_down.py, on its own S3 stack. The API
killed mid-request belongs to the request ledger's tests.)
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import httpx
import pytest

from orchestration.ledger import Ledger
from tests.e2e.stack import Person, Stack, months_ago, wait_until
from tests.reliability.conftest import Mailer, Platform
from tests.reliability.deliveries import Key, wait_delivered
from tests.reliability.report import summary

pytestmark = pytest.mark.e2e

NOTIFY_TIMEOUT = 240
FAILURES = 3


def _catalog(stack: Stack, person: Person, months_back: int, last_day: int) -> str:
    year, month = months_ago(months_back)
    period = f"{year}-{month:02d}"
    response = stack.request(
        "/institution/reports/catalog", person.bearer, start_date=f"{period}-01", end_date=f"{period}-{last_day:02d}"
    )
    assert response.status_code == 200, response.text
    return str(response.json()["results"]["id"])


@pytest.fixture(scope="module")
def outbox(ledger_url: str) -> Ledger:
    return Ledger(ledger_url)


def test_receiver_and_smtp_down_then_500s_then_up_deliver_exactly_once(
    stack: Stack, people: dict[int, list[Person]], platform: Platform, mailer: Mailer, outbox: Ledger
) -> None:
    person = people[3][2]
    platform.down()
    mailer.down()
    try:
        job_id = _catalog(stack, person, 1, 13)
        assert stack.wait_job(job_id, person.bearer)["status"] == "succeeded"
        wait_until(
            lambda: any(n.attempts >= 1 for n in outbox.deliveries.list(job_id=job_id)),
            120,
            "a failed delivery attempt while both channels are down",
        )
    finally:
        receiver = platform.up()
        receiver.fail_next(FAILURES, 500)
    mailer.up()
    keys: list[Key] = [(job_id, person.user)]
    delivered = wait_delivered(platform, mailer, keys, NOTIFY_TIMEOUT)
    refused = [c.status for c in receiver.requests if c.status >= 500]  # the scripted 500s, whoever got them
    rows = outbox.deliveries.list(job_id=job_id)
    assert sorted((str(n.channel), n.state) for n in rows) == [("email", "sent"), ("webhook", "sent")]
    (row,) = [n for n in rows if n.channel == "webhook"]
    assert delivered.duplicated(keys) == [] and receiver.duplicates == []
    summary(
        "delivery-outage",
        attempts=row.attempts,
        receiver_500s=len(refused),
        smtp_down=True,
        notifications=len(keys),
        lost=len(delivered.lost(keys)),
        duplicated=len(delivered.duplicated(keys)),
    )
    assert len(refused) == FAILURES


def test_api_and_daemon_killed_mid_run_are_restarted_and_the_runs_succeed(
    stack: Stack, people: dict[int, list[Person]], platform: Platform, mailer: Mailer
) -> None:
    api_run_person, daemon_run_person = people[1][7], people[2][4]
    # Two reports run; the API dies (issue 10 #3), then the daemon: its run workers go on,
    # the supervisor restarts both, a new daemon delivers.
    job_api = _catalog(stack, api_run_person, 3, 14)
    job_daemon = _catalog(stack, daemon_run_person, 3, 15)
    for job in (job_api, job_daemon):
        wait_until(lambda job=job: stack.run_status(job) in ("STARTED", "SUCCESS"), 180, "the runs to start", 0.1)
    old_api = stack.kill_child("uvicorn")
    old_daemon = stack.kill_child("dagster_daemon")
    wait_until(lambda: stack.child_pid("uvicorn") not in (None, old_api), 60, "the API to be restarted", 0.2)
    wait_until(
        lambda: stack.child_pid("dagster_daemon") not in (None, old_daemon), 60, "the daemon to be restarted", 0.2
    )
    stack.wait_healthy()
    assert stack.wait_job(job_api, api_run_person.bearer)["status"] == "succeeded"
    assert stack.wait_job(job_daemon, daemon_run_person.bearer)["status"] == "succeeded"
    keys: list[Key] = [(job_api, api_run_person.user), (job_daemon, daemon_run_person.user)]
    delivered = wait_delivered(platform, mailer, keys, NOTIFY_TIMEOUT)
    assert delivered.duplicated(keys) == []
    log = stack.log_path.read_text(errors="replace")
    assert "api exited with -9" in log and "dagster-daemon exited with -9" in log, stack.log_tail()
    assert "stopping the stack" not in log
    summary(
        "processes-killed-mid-run",
        killed="api,dagster-daemon",
        restarted=2,
        runs_succeeded=2,
        lost=len(delivered.lost(keys)),
        duplicated=len(delivered.duplicated(keys)),
    )


def test_warehouse_missing_or_corrupt_fails_cleanly_and_notifies_once(
    stack: Stack, people: dict[int, list[Person]], platform: Platform, mailer: Mailer, rel_home: Path
) -> None:
    person = people[1][8]
    warehouse = rel_home / "warehouse.duckdb"
    saved = rel_home / "warehouse.saved"
    shutil.copyfile(warehouse, saved)
    outcomes: list[str] = []
    keys: list[Key] = []
    try:
        for fault, last_day in (("missing", 16), ("corrupt", 17)):
            if fault == "missing":
                warehouse.unlink()
            else:
                warehouse.write_bytes(b"this is not a duckdb file\n" * 1000)
            year, month = months_ago(4)
            period = f"{year}-{month:02d}"
            response = stack.request(
                "/institution/reports/catalog",
                person.bearer,
                start_date=f"{period}-01",
                end_date=f"{period}-{last_day}",
            )
            assert response.status_code in (200, 400, 503), response.text
            sync = httpx.post(
                f"{stack.base}/reports/bookings-workload",
                headers={"Authorization": f"Bearer {person.bearer}"},
                json={},
                timeout=60,
            )
            assert sync.status_code in (200, 503) and (sync.status_code == 200 or sync.json()["code"] == "unavailable")
            if response.status_code == 200:
                job_id = response.json()["results"]["id"]
                status = stack.wait_job(job_id, person.bearer)["status"]
                outcomes.append(f"{fault}:run-{status}")
                keys.append((job_id, person.user))
            else:
                outcomes.append(f"{fault}:refused-{response.status_code}")
    finally:
        shutil.copyfile(saved, warehouse)
    delivered = wait_delivered(platform, mailer, keys, NOTIFY_TIMEOUT) if keys else None
    if delivered is not None:
        assert delivered.duplicated(keys) == []
    # Back to normal.
    year, month = months_ago(4)
    period = f"{year}-{month:02d}"
    again = stack.request(
        "/institution/reports/catalog", person.bearer, start_date=f"{period}-01", end_date=f"{period}-18"
    )
    assert again.status_code == 200, again.text
    assert stack.wait_job(again.json()["results"]["id"], person.bearer)["status"] == "succeeded"
    summary(
        "warehouse-missing-corrupt",
        outcomes="/".join(outcomes),
        notified=len(keys),
        lost=len(delivered.lost(keys)) if delivered else 0,
        duplicated=len(delivered.duplicated(keys)) if delivered else 0,
        **{"5xx": 0},
    )


def test_a_run_worker_killed_with_its_code_server_fails_visibly_is_notified_once_and_a_retry_succeeds(
    stack: Stack, people: dict[int, list[Person]], platform: Platform, mailer: Mailer, rel_home: Path
) -> None:
    person = people[3][0]
    hold = rel_home / "hold-runs"  # runs wait before writing their file while it exists
    hold.touch()
    try:
        job_id = _catalog(stack, person, 5, 19)
        pid = wait_until(lambda: stack.run_worker_pid(job_id), 180, "the run worker to start", 0.2)
        # STARTED, not STARTING: a worker lost before it reported the start is failed by the
        # start timeout (start_timeout_seconds) instead, minutes later.
        wait_until(lambda: stack.run_status(job_id) == "STARTED", 60, "the run to report its start", 0.2)
        # Its owner first — the code server that spawned it, or the daemon whose run launcher handed
        # it the run warm (orchestration/run_launcher.py) — since a worker killed alone is reported by
        # its owner; then the worker: nobody is left who saw it start except run monitoring.
        owner = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        cmdline = Path(f"/proc/{owner}/cmdline").read_bytes()
        assert b"api\0grpc" in cmdline or b"dagster_daemon" in cmdline, cmdline  # orchestration.dagster_daemon
        os.kill(owner, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    finally:
        hold.unlink(missing_ok=True)
    failed = stack.wait_job(job_id, person.bearer, timeout=120)
    assert failed["status"] == "failed", failed
    keys: list[Key] = [(job_id, person.user)]
    delivered = wait_delivered(platform, mailer, keys, NOTIFY_TIMEOUT)
    (hook,) = [c.json() for c in platform.calls() if 200 <= c.status < 300 and c.json()["jobId"] == job_id]
    assert hook["status"] == "failed" and hook["userId"] == person.user, hook
    retry_id = _catalog(stack, person, 5, 19)
    assert retry_id != job_id  # a failed run is not joined
    assert stack.wait_job(retry_id, person.bearer)["status"] == "succeeded"
    keys.append((retry_id, person.user))
    delivered = wait_delivered(platform, mailer, keys, NOTIFY_TIMEOUT)
    assert delivered.duplicated(keys) == []
    summary(
        "run-worker-and-code-server-killed",
        run=stack.run_status(job_id).lower(),
        retry="succeeded",
        notifications=len(keys),
        lost=len(delivered.lost(keys)),
        duplicated=len(delivered.duplicated(keys)),
    )
