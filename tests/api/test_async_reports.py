"""Seeds 000/001 against a fake Dagster GraphQL endpoint: launch, cache, dedup, unavailability."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from assets.cache_key import cache_key
from orchestration.ledger import Ledger
from orchestration.ledger.schema import report_files
from tests.api.conftest import auth
from tests.api.fake_dagster import FakeDagster

STORYBOARD = "/institution/reports/storyboard-usage"
CATALOG = "/institution/reports/catalog"


def _current_month() -> tuple[int, int]:
    now = datetime.now(UTC)
    return now.year, now.month


def _store_file(settings, key: str, content: bytes = b"PK-fake-xlsx") -> None:
    path = Path(settings.storage_location) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def test_storyboard_month_launches_the_partition_job(client: TestClient, fake_dagster: FakeDagster) -> None:
    response = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth())
    assert response.status_code == 200, response.text
    run_id = response.json()["results"]["id"]
    assert response.json() == {"results": {"id": run_id}}
    (run,) = fake_dagster.launches()
    assert run.run_id == run_id and run.job_name == "storyboard_usage_job"
    assert run.tags["dagster/partition"] == "1|2026-03-01"
    assert run.tags["dagster/partition/institution"] == "1"
    assert run.tags["dagster/partition/month"] == "2026-03-01"
    assert run.tags["lxp/report"] == "storyboard-usage"
    assert run.tags["lxp/institution"] == "1"
    assert run.tags["lxp/requester"] == "10"
    assert run.tags["lxp/cache_key"] == cache_key("storyboard-usage", 1, {"month": "2026-03"})
    assert "1" in fake_dagster.partitions
    assert fake_dagster.calls.index("AddPartition") < fake_dagster.calls.index("Launch")


def test_month_outside_partitions_runs_the_adhoc_job_in_institution_timezone(
    client: TestClient, fake_dagster: FakeDagster
) -> None:
    response = client.get(
        f"{STORYBOARD}?month=12&year=2023", headers=auth({"institutionId": 2, "userId": 20, "subdomain": "beta"})
    )
    assert response.status_code == 200
    (run,) = fake_dagster.launches()
    assert run.job_name == "storyboard_usage_adhoc"
    config = run.run_config["ops"]["build_report"]["config"]
    assert config["institution_id"] == 2
    assert config["start"] == "2023-12-01T00:00:00-04:00"  # America/Manaus
    assert config["end"] == "2024-01-01T00:00:00-04:00"
    assert json.loads(config["filters_json"]) == {} and config["fmt"] == "xlsx"
    assert "dagster/partition" not in run.tags


def test_catalog_whole_month_uses_partition_and_filters_use_adhoc(
    client: TestClient, fake_dagster: FakeDagster
) -> None:
    assert client.get(f"{CATALOG}?start_date=2026-02-01&end_date=2026-02-28", headers=auth()).status_code == 200
    assert fake_dagster.launches()[-1].job_name == "course_catalog_job"
    assert fake_dagster.launches()[-1].tags["dagster/partition"] == "1|2026-02-01"

    response = client.get(f"{CATALOG}?start_date=2026-01-01&end_date=2026-06-02&school_ids=101,100,101", headers=auth())
    assert response.status_code == 200, response.text
    run = fake_dagster.launches()[-1]
    assert run.job_name == "course_catalog_adhoc"
    config = run.run_config["ops"]["build_report"]["config"]
    assert config["start"] == "2026-01-01T00:00:00-03:00"
    assert config["end"] == "2026-06-03T00:00:00-03:00"  # end_date inclusive
    assert json.loads(config["filters_json"]) == {"school_ids": [100, 101]}

    # Same request with ids reordered: same cache key, joins the queued run.
    again = client.get(
        f"{CATALOG}?start_date=2026-01-01&end_date=2026-06-02&school_ids=100,101", headers=auth({"userId": 12})
    )
    assert again.json() == {"results": {"id": run.run_id}}


def test_catalog_refuses_schools_of_another_institution(client: TestClient, fake_dagster: FakeDagster) -> None:
    response = client.get(f"{CATALOG}?start_date=2026-01-01&end_date=2026-01-31&school_ids=100,200", headers=auth())
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid school_ids. Not schools of this institution: 200"
    assert fake_dagster.launches() == []


def test_unknown_institution_is_404(client: TestClient) -> None:
    response = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"institutionId": 999}))
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_identical_request_joins_the_inflight_run(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    first = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]
    second = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": 12})).json()["results"]["id"]
    same_user_again = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]
    assert first == second == same_user_again
    assert len(fake_dagster.launches()) == 1
    recipients = Ledger(settings.ledger).requests.recipients(first)
    assert [(r.user_id, r.launched) for r in recipients] == [(10, True), (12, False)]


def test_finished_run_releases_the_inflight_slot_and_a_failure_relaunches(
    client: TestClient, fake_dagster: FakeDagster
) -> None:
    first = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]
    fake_dagster.finish(first, "FAILURE")
    second = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]
    assert second != first and len(fake_dagster.launches()) == 2


def test_successful_adhoc_run_is_a_cache_hit_with_a_notification(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    url = f"{CATALOG}?start_date=2026-01-01&end_date=2026-01-15"
    run_id = client.get(url, headers=auth()).json()["results"]["id"]
    key = "catalog/institution=1/adhoc/abc/catalog_1_2026-01-01_2026-01-15.xlsx"
    _store_file(settings, key)
    fake_dagster.finish(
        run_id,
        "SUCCESS",
        **{"lxp/storage_key": key, "lxp/filename": "catalog_1_2026-01-01_2026-01-15.xlsx", "lxp/rows": "7"},
    )

    response = client.get(url, headers=auth({"userId": 12}))
    assert response.json() == {"results": {"cached": True}}
    assert len(fake_dagster.launches()) == 1
    rows = Ledger(settings.ledger).deliveries.list()
    mine = [n for n in rows if n.recipient_user_id == 12]
    assert len(mine) == 1
    note = mine[0]
    assert note.cached and note.status_of_job == "succeeded" and note.storage_key == key
    assert note.job_id.startswith(f"cache:{fake_dagster.launches()[0].tags['lxp/cache_key']}:")
    # A second cache hit by the same user is a NEW notification (distinct job id).
    client.get(url, headers=auth({"userId": 12}))
    assert len([n for n in Ledger(settings.ledger).deliveries.list() if n.recipient_user_id == 12]) == 2


def test_partition_materialization_is_a_cache_hit(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    key = "storyboard-usage/institution=1/2026-03/storyboard-usage_1_2026-03.xlsx"
    _store_file(settings, key)
    meta = {"storage_key": key, "filename": "storyboard-usage_1_2026-03.xlsx", "rows": 12, "format": "xlsx"}
    fake_dagster.add_materialization("storyboard_usage", "1|2026-03-01", meta, age_seconds=60)
    assert client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json() == {"results": {"cached": True}}
    assert fake_dagster.launches() == []


def test_stale_or_missing_cache_launches(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    key = "storyboard-usage/institution=1/2026-02/storyboard-usage_1_2026-02.xlsx"
    meta = {"storage_key": key, "filename": "storyboard-usage_1_2026-02.xlsx", "rows": 1, "format": "xlsx"}
    # Fresh metadata but the file is gone from storage: not a hit.
    fake_dagster.add_materialization("storyboard_usage", "1|2026-02-01", meta, age_seconds=60)
    assert "id" in client.get(f"{STORYBOARD}?month=2&year=2026", headers=auth()).json()["results"]
    # File present but older than the TTL: not a hit either.
    _store_file(settings, key)
    fake_dagster.runs.clear()
    client.app.state.services.ledger.claims.release(cache_key("storyboard-usage", 1, {"month": "2026-02"}))
    with client.app.state.services.ledger.engine.begin() as conn:  # and forget the file indexed by the first lookup
        conn.execute(report_files.delete())
    fake_dagster.add_materialization(
        "storyboard_usage", "1|2026-02-01", meta, age_seconds=settings.cache_ttl_seconds + 60
    )
    assert "id" in client.get(f"{STORYBOARD}?month=2&year=2026", headers=auth()).json()["results"]


def test_open_month_uses_the_short_ttl(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    year, month = _current_month()
    key = f"storyboard-usage/institution=1/{year}-{month:02d}/f.xlsx"
    _store_file(settings, key)
    meta = {"storage_key": key, "filename": "f.xlsx", "rows": 1, "format": "xlsx"}
    fake_dagster.add_materialization(
        "storyboard_usage", f"1|{year}-{month:02d}-01", meta, age_seconds=settings.open_month_cache_ttl_seconds + 30
    )
    # Younger than the 24 h TTL but older than the open-month TTL: relaunch.
    assert "id" in client.get(f"{STORYBOARD}?month={month}&year={year}", headers=auth()).json()["results"]


def test_dagster_unreachable_is_503_and_nothing_is_queued(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    fake_dagster.down = True
    response = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth())
    assert response.status_code == 503 and response.json()["code"] == "unavailable"
    store = Ledger(settings.ledger)
    assert store.claims.get_inflight(cache_key("storyboard-usage", 1, {"month": "2026-03"})) is None
    assert store.requests.history(10, 1)[1] == 0
    fake_dagster.down = False
    assert "id" in client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]


def test_launch_refused_by_dagster_is_500_and_releases_the_slot(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    fake_dagster.known_jobs = set()
    response = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth())
    assert response.status_code == 500 and response.json()["code"] == "internal"
    assert Ledger(settings.ledger).claims.get_inflight(cache_key("storyboard-usage", 1, {"month": "2026-03"})) is None


def test_stale_claim_of_a_crashed_launcher_is_replaced(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    store = Ledger(settings.ledger)
    key = cache_key("storyboard-usage", 1, {"month": "2026-03"})
    owner, _ = store.claims.claim(key, now=datetime.now(UTC) - timedelta(hours=1))
    assert owner is not None
    response = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth())
    assert "id" in response.json()["results"]
    assert store.claims.get_inflight(key).run_id == response.json()["results"]["id"]


def test_requesters_are_subscribed_for_the_delivery_sensor(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    run_id = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]
    client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": 12}))
    rows = Ledger(settings.ledger).deliveries.list(job_id=run_id)
    assert sorted((n.recipient_user_id, n.state) for n in rows) == [(10, "waiting"), (12, "waiting")]
    # the row holds the period as the recipient reads it (RequestedReport.period_text): nothing parses it back
    assert {n.period for n in rows} == {"03/2026"} and {n.timezone for n in rows} == {"America/Sao_Paulo"}


def test_late_joiner_of_a_just_finished_run_is_notified_once(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    """The run ends between the joiner's status check and its insert, after the sensor
    released the job's waiting rows: the joiner releases its own row."""
    launcher = client.app.state.services.launcher
    run_id = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]
    outbox = Ledger(settings.ledger)
    real_record = launcher.ledger.requests.add_requester

    def record_then_finish(asked, asker, **kwargs):
        ok = real_record(asked, asker, **kwargs)
        if asker.user_id == 12:
            fake_dagster.finish(run_id, "SUCCESS", **{"lxp/storage_key": "k/f.xlsx", "lxp/filename": "f.xlsx"})
            # What the delivery sensor does when it sees the finished run (before our subscribe).
            outbox.requests.complete_job(run_id, ("succeeded", "k/f.xlsx", "f.xlsx"))
        return ok

    launcher.ledger.requests.add_requester = record_then_finish  # type: ignore[method-assign]
    try:
        assert client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": 12})).json() == {
            "results": {"id": run_id}
        }
    finally:
        launcher.ledger.requests.add_requester = real_record  # type: ignore[method-assign]
    rows = {n.recipient_user_id: n for n in outbox.deliveries.list(job_id=run_id)}
    assert set(rows) == {10, 12}
    assert all(
        n.state == "pending" and n.status_of_job == "succeeded" and n.storage_key == "k/f.xlsx" for n in rows.values()
    )
    # The sensor seeing the run again changes nothing.
    assert outbox.requests.complete_job(run_id, ("succeeded", "k/f.xlsx", "f.xlsx")) == 0


def test_colleague_joining_after_the_runs_hook_recorded_the_outcome_is_sent_at_once(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    """The run's success hook recorded the outcome while Dagster still reports the run running:
    a colleague who joins now is deliverable at once and handed to the delivery worker, not left
    for the sensor's next tick (its re-check of the run sees nothing to settle)."""
    launcher = client.app.state.services.launcher
    run_id = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]
    outbox = Ledger(settings.ledger)
    outbox.requests.complete_job(run_id, ("succeeded", "k/f.xlsx", "f.xlsx"))  # the hook; the run is still running
    handed: list[str] = []
    launcher.dedup.deliver = handed.append
    assert client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": 12})).json() == {
        "results": {"id": run_id}
    }
    assert handed == [run_id]
    rows = {n.recipient_user_id: n.state for n in outbox.deliveries.list(job_id=run_id)}
    assert rows == {10: "pending", 12: "pending"}


def test_fifty_concurrent_identical_requests_make_one_run(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    fake_dagster.launch_delay = 0.3  # keep the launcher busy while the others arrive
    users = list(range(1000, 1050))

    def call(user: int) -> dict:
        response = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": user}))
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(call, users))
    ids = {r["results"]["id"] for r in results}
    assert len(ids) == 1 and len(fake_dagster.launches()) == 1
    recipients = Ledger(settings.ledger).requests.recipients(ids.pop())
    assert sorted(r.user_id for r in recipients) == users
    assert sum(r.launched for r in recipients) == 1


def test_two_processes_sharing_the_store_make_one_run(settings, fake_dagster: FakeDagster, tmp_path) -> None:
    """Two independent app instances (as two replicas would be) on one outbox DB."""
    from tests.api.conftest import build_client

    fake_dagster.launch_delay = 0.2
    with build_client(settings, fake_dagster) as a, build_client(settings, fake_dagster) as b:

        def call(args):
            c, user = args
            return c.get(f"{STORYBOARD}?month=4&year=2026", headers=auth({"userId": user})).json()["results"]["id"]

        with ThreadPoolExecutor(max_workers=10) as pool:
            ids = set(pool.map(call, [(a if i % 2 else b, 2000 + i) for i in range(10)]))
    assert len(ids) == 1 and len(fake_dagster.launches()) == 1


def test_notifications_carry_the_requesters_email(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    """With only SMTP configured a row without an address would go dead: launch, join and cache hit carry it."""
    run_id = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]  # launch, user 10
    client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": 12}))  # join
    client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth({"userId": 999}))  # join, not a warehouse user
    outbox = Ledger(settings.ledger)
    emails = {n.recipient_user_id: n.email for n in outbox.deliveries.list(job_id=run_id)}
    assert emails == {10: "ana@alfa.test", 12: "prof@alfa.test", 999: None}

    key = "storyboard-usage/institution=1/2026-04/f.xlsx"
    _store_file(settings, key)
    meta = {"storage_key": key, "filename": "f.xlsx", "rows": 1, "format": "xlsx"}
    fake_dagster.add_materialization("storyboard_usage", "1|2026-04-01", meta, age_seconds=60)
    assert client.get(f"{STORYBOARD}?month=4&year=2026", headers=auth({"userId": 12})).json() == {
        "results": {"cached": True}
    }
    hit = [n for n in outbox.deliveries.list() if n.cached]
    assert [(n.recipient_user_id, n.email) for n in hit] == [(12, "prof@alfa.test")]


def test_cache_hits_are_answered_from_the_file_index_without_dagster(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    key = "storyboard-usage/institution=1/2026-05/f.xlsx"
    _store_file(settings, key)
    meta = {"storage_key": key, "filename": "f.xlsx", "rows": 3, "format": "xlsx"}
    fake_dagster.add_materialization("storyboard_usage", "1|2026-05-01", meta, age_seconds=60)
    url = f"{STORYBOARD}?month=5&year=2026"
    assert client.get(url, headers=auth()).json() == {"results": {"cached": True}}
    assert fake_dagster.calls.count("Materializations") == 1  # first hit: looked up in Dagster, then indexed
    fake_dagster.calls.clear()
    for user in (10, 12, 20):
        assert client.get(url, headers=auth({"userId": user})).json() == {"results": {"cached": True}}
    assert fake_dagster.calls == []
    known = Ledger(settings.ledger).files.known_file(cache_key("storyboard-usage", 1, {"month": "2026-05"}))
    assert known is not None and (known.storage_key, known.rows) == (key, 3)


def test_expired_index_entry_falls_back_to_dagster_and_its_newer_file(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    store = client.app.state.services.ledger
    k = cache_key("storyboard-usage", 1, {"month": "2026-05"})
    old_key, new_key = "sb/old.xlsx", "sb/new.xlsx"
    _store_file(settings, old_key)
    _store_file(settings, new_key)
    from orchestration.ledger import KnownFile

    store.files.remember_file(
        KnownFile(
            k, old_key, "old.xlsx", 1, datetime.now(UTC) - timedelta(seconds=settings.cache_ttl_seconds + 5), "r-old"
        )
    )
    # Re-materialized from the UI a minute ago: only Dagster knows it.
    fake_dagster.add_materialization(
        "storyboard_usage", "1|2026-05-01", {"storage_key": new_key, "filename": "new.xlsx", "rows": 2}, age_seconds=60
    )
    assert client.get(f"{STORYBOARD}?month=5&year=2026", headers=auth()).json() == {"results": {"cached": True}}
    assert store.files.known_file(k).storage_key == new_key
    served = [n for n in Ledger(settings.ledger).deliveries.list() if n.cached]
    assert [n.storage_key for n in served] == [new_key]
    # An older file never replaces a newer one in the index.
    store.files.remember_file(KnownFile(k, old_key, "old.xlsx", 1, datetime.now(UTC) - timedelta(hours=2), "r-old"))
    assert store.files.known_file(k).storage_key == new_key


def test_open_month_index_entry_obeys_the_short_ttl(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    from orchestration.ledger import KnownFile

    year, month = _current_month()
    k = cache_key("storyboard-usage", 1, {"month": f"{year:04d}-{month:02d}"})
    _store_file(settings, "sb/open.xlsx")
    age = timedelta(seconds=settings.open_month_cache_ttl_seconds + 30)
    client.app.state.services.ledger.files.remember_file(
        KnownFile(k, "sb/open.xlsx", "open.xlsx", 1, datetime.now(UTC) - age, "r")
    )
    assert "id" in client.get(f"{STORYBOARD}?month={month}&year={year}", headers=auth()).json()["results"]


def test_status_poll_of_a_finished_run_indexes_its_file(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    url = f"{CATALOG}?start_date=2026-01-01&end_date=2026-01-15"
    run_id = client.get(url, headers=auth()).json()["results"]["id"]
    key = "catalog/institution=1/adhoc/x/c.xlsx"
    _store_file(settings, key)
    fake_dagster.finish(run_id, "SUCCESS", **{"lxp/storage_key": key, "lxp/filename": "c.xlsx", "lxp/rows": "4"})
    assert client.get(f"/institution/reports/jobs/{run_id}", headers=auth()).json()["status"] == "succeeded"
    fake_dagster.calls.clear()
    # The next identical request is served from the index before it even looks at the in-flight slot.
    assert client.get(url, headers=auth({"userId": 12})).json() == {"results": {"cached": True}}
    assert "Runs" not in fake_dagster.calls
    known = Ledger(settings.ledger).files.known_file(fake_dagster.launches()[0].tags["lxp/cache_key"])
    assert known is not None and (known.storage_key, known.rows, known.run_id) == (key, 4, run_id)
