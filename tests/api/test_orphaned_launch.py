"""Issue 10 item 2: an API process killed between launching a run and publishing its id.

A real uvicorn API process (against the fake Dagster served over HTTP) is made
to pause right after launching (``LXP_TEST_PAUSE_AFTER_LAUNCH``) and is killed
with SIGKILL in that window. A second API process must then answer the
repeated request promptly with the orphan run's id (not 503 after 30 s), and
when the run ends every requester — including the one whose process died —
gets exactly one notification.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.launch.launch import PAUSE_AFTER_LAUNCH_ENV
from assets.cache_key import cache_key
from orchestration.ledger import Asked, Asker, Ledger, claim_of, job_outcome
from tests.api.conftest import SECRET, auth
from tests.api.fake_dagster import FakeDagster, FakeRun
from tests.e2e.stack import wait_until
from tests.services.api_process import ApiProcess

ROOT = Path(__file__).resolve().parents[2]
STORYBOARD = "/institution/reports/storyboard-usage?month=3&year=2026"


def test_repeat_after_the_api_died_mid_launch_joins_the_orphan_run_and_everybody_is_notified_once(
    tmp_path: Path, warehouse_url: str, fake_dagster: FakeDagster, dagster_url: str
) -> None:
    env = {
        "LXP_HOME": str(tmp_path),
        "LXP_WAREHOUSE_URL": warehouse_url,
        "LXP_JWT_SECRET": SECRET,
        "LXP_JWT_ALGORITHMS": "HS256",
        "LXP_DAGSTER_URL": dagster_url,
        "LXP_RATE_LIMIT": "1000/minute",
        "LXP_LINK_SECRET": "link-secret-for-tests",
    }
    log = tmp_path / "api.log"
    first = ApiProcess({**env, PAUSE_AFTER_LAUNCH_ENV: "120"}, log).start()
    base = first.base
    procs = [first]
    try:
        # User 10 asks; the process launches the run and pauses before publishing its id.
        lost: list[BaseException] = []

        def ask_and_die() -> None:
            try:
                httpx.get(f"{base}{STORYBOARD}", headers=auth(), timeout=150)
            except httpx.HTTPError as exc:  # the process is killed before it answers
                lost.append(exc)

        doomed = threading.Thread(target=ask_and_die, daemon=True)
        doomed.start()
        run = wait_until(lambda: next(iter(fake_dagster.launches()), None), 60, "the run launched")
        time.sleep(0.5)
        first.kill()
        doomed.join(30)
        assert lost, "the first request should have died with its process"

        settings_url = f"sqlite:///{(tmp_path / 'outbox.sqlite').resolve()}"
        store = Ledger(settings_url)
        claim = store.claims.get_inflight(cache_key("storyboard-usage", 1, {"month": "2026-03"}))
        assert claim is not None and claim.run_id is None  # the id was never published
        assert [r.user_id for r in store.requests.claim_recipients(claim.claim_id)] == [
            10
        ]  # but the requester is recorded
        assert run.tags["lxp/claim"] == claim.claim_id

        second = ApiProcess(env, log).start()
        base = second.base
        procs.append(second)
        answers: dict[int, tuple[int, Any, float]] = {}
        for user in (12, 10):  # another user, and the one whose request died, ask again
            started = time.monotonic()
            response = httpx.get(f"{base}{STORYBOARD}", headers=auth({"userId": user}), timeout=60)
            answers[user] = (response.status_code, response.json(), time.monotonic() - started)
        for user, (status, body, elapsed) in answers.items():
            print(f"repeat after SIGKILL: user {user} answered {status} in {elapsed:.2f} s")
            assert status == 200, (user, body)
            assert body == {"results": {"id": run.run_id}}  # joined the orphan, no second run
            assert elapsed < 15, f"user {user} waited {elapsed:.1f} s"  # the lease, not the 30 s/120 s waits
        assert len(fake_dagster.launches()) == 1

        # The run ends; the delivery sensor releases its requesters (same calls as release_finished_runs).
        fake_dagster.finish(run.run_id, "SUCCESS", **{"lxp/storage_key": "k/f.xlsx", "lxp/filename": "f.xlsx"})
        finished = fake_dagster.runs[run.run_id]
        outbox = Ledger(settings_url)
        outbox.requests.complete_job(run.run_id, job_outcome(True, finished.tags), claim_id=claim_of(finished.tags))
        rows = outbox.deliveries.list(job_id=run.run_id)
        assert Counter(n.recipient_user_id for n in rows) == {10: 1, 12: 1}  # 0 lost, 0 duplicated
        assert all(n.state == "pending" and n.status_of_job == "succeeded" for n in rows)
        assert [(r.user_id, r.launched) for r in store.requests.recipients(run.run_id)] == [(10, True), (12, False)]
        outbox.dispose()
        store.dispose()
    finally:
        for api in procs:
            api.stop()


def test_a_launch_that_never_reached_dagster_is_relaunched_for_its_requesters(
    client: Any, fake_dagster: FakeDagster, settings: Any
) -> None:
    """The dead launcher's claim has no run in Dagster: the next request launches under the
    same claim, so the earlier requester is served by that run too."""
    store = Ledger(settings.ledger)
    key = cache_key("storyboard-usage", 1, {"month": "2026-03"})
    dead, _ = store.claims.claim(key, now=datetime.now(UTC) - timedelta(minutes=1))
    assert dead is not None
    store.requests.add_requester(
        Asked(1, "storyboard-usage", key), Asker(10, "alfa"), claim_id=dead.claim_id, launched=True
    )
    started = time.monotonic()
    response = client.get(STORYBOARD, headers=auth({"userId": 12}))
    assert response.status_code == 200 and time.monotonic() - started < 5
    run_id = response.json()["results"]["id"]
    assert [r.tags["lxp/claim"] for r in fake_dagster.launches()] == [dead.claim_id]
    assert sorted(r.user_id for r in store.requests.recipients(run_id)) == [10, 12]


def test_a_run_dagster_never_queued_is_not_adopted(client: Any, fake_dagster: FakeDagster, settings: Any) -> None:
    """Issue 15 #4: the dead launcher's launch failed half-way (Dagster created the run, its storage
    blipped before queueing it, the cleanup failed too). The never-queued run is deleted, not adopted:
    a new run is launched under the same claim and serves the earlier requester too."""
    store = Ledger(settings.ledger)
    key = cache_key("storyboard-usage", 1, {"month": "2026-03"})
    dead, _ = store.claims.claim(key, now=datetime.now(UTC) - timedelta(minutes=1))
    assert dead is not None
    store.requests.add_requester(
        Asked(1, "storyboard-usage", key), Asker(10, "alfa"), claim_id=dead.claim_id, launched=True
    )
    stranded = FakeRun("stranded", "storyboard_usage_job", {}, {"lxp/claim": dead.claim_id}, status="NOT_STARTED")
    fake_dagster.runs[stranded.run_id] = stranded
    response = client.get(STORYBOARD, headers=auth({"userId": 12}))
    assert response.status_code == 200, response.text
    run_id = response.json()["results"]["id"]
    assert run_id != "stranded" and "stranded" not in fake_dagster.runs  # deleted, not adopted
    assert [r.tags["lxp/claim"] for r in fake_dagster.launches()] == [dead.claim_id]
    assert fake_dagster.runs[run_id].status == "QUEUED"
    assert sorted(r.user_id for r in store.requests.recipients(run_id)) == [10, 12]
    assert store.claims.get_inflight(key).run_id == run_id  # type: ignore[union-attr]
