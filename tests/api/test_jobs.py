"""Jobs endpoints: status with a fresh link for requesters only, history, cancel; signed downloads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.routers import jobs
from orchestration import links
from tests.api.conftest import auth
from tests.api.fake_dagster import FakeDagster

STORYBOARD = "/institution/reports/storyboard-usage"
JOBS = "/institution/reports/jobs"
KEY = "storyboard-usage/institution=1/2026-03/storyboard-usage_1_2026-03.xlsx"
FILENAME = "storyboard-usage_1_2026-03.xlsx"


def _launch(client: TestClient, month: int = 3, **claims) -> str:
    response = client.get(f"{STORYBOARD}?month={month}&year=2026", headers=auth(claims or None))
    return response.json()["results"]["id"]


def _succeed(fake: FakeDagster, settings, run_id: str, content: bytes = b"PK\x03\x04 report bytes") -> None:
    path = Path(settings.storage_location) / KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    fake.finish(
        run_id,
        "SUCCESS",
        **{"lxp/storage_key": KEY, "lxp/filename": FILENAME, "lxp/rows": "42", "lxp/bytes": str(len(content))},
    )


def test_status_lifecycle_and_fresh_link(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    run_id = _launch(client)
    job = client.get(f"{JOBS}/{run_id}", headers=auth()).json()
    assert job["status"] == "queued" and job["url"] is None and job["report"] == "storyboard-usage"
    assert job["params"] == {"month": "2026-03"} and job["cached"] is False

    fake_dagster.runs[run_id].status = "STARTED"
    assert client.get(f"{JOBS}/{run_id}", headers=auth()).json()["status"] == "running"

    _succeed(fake_dagster, settings, run_id)
    job = client.get(f"{JOBS}/{run_id}", headers=auth()).json()
    assert job["status"] == "succeeded" and job["rows"] == 42 and job["filename"] == FILENAME
    assert job["started_at"] and job["finished_at"]
    expires = datetime.fromisoformat(job["url_expires_at"])
    assert abs((expires - datetime.now(UTC)).total_seconds() - settings.link_ttl_seconds) < 60
    link = links.verify_url(job["url"], settings.link_secret, datetime.now(UTC))
    assert link.key == KEY and link.filename == FILENAME

    # The link downloads the file, with the readable name.
    parts = urlsplit(job["url"])
    download = client.get(f"{parts.path}?{parts.query}")
    assert download.status_code == 200 and download.content == b"PK\x03\x04 report bytes"
    assert FILENAME in download.headers["content-disposition"]


def test_job_is_invisible_to_other_users_and_institutions(client: TestClient, fake_dagster: FakeDagster) -> None:
    run_id = _launch(client)
    for claims in ({"userId": 12}, {"institutionId": 2, "userId": 10, "subdomain": "beta"}):
        response = client.get(f"{JOBS}/{run_id}", headers=auth(claims))
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert client.delete(f"{JOBS}/{run_id}", headers=auth(claims)).status_code == 404
    assert client.get(f"{JOBS}/does-not-exist", headers=auth()).status_code == 404
    # A user who joined the run is a requester too.
    assert _launch(client, userId=12) == run_id
    assert client.get(f"{JOBS}/{run_id}", headers=auth({"userId": 12})).status_code == 200


def test_failed_and_canceled(client: TestClient, fake_dagster: FakeDagster) -> None:
    run_id = _launch(client)
    fake_dagster.finish(run_id, "FAILURE")
    job = client.get(f"{JOBS}/{run_id}", headers=auth()).json()
    assert job["status"] == "failed" and job["url"] is None


def test_cancel_only_by_the_launcher_and_only_while_active(client: TestClient, fake_dagster: FakeDagster) -> None:
    run_id = _launch(client)
    _launch(client, userId=12)
    joined = client.delete(f"{JOBS}/{run_id}", headers=auth({"userId": 12}))
    assert joined.status_code == 403 and joined.json()["code"] == "permission_denied"
    assert client.delete(f"{JOBS}/{run_id}", headers=auth()).status_code == 204
    assert fake_dagster.runs[run_id].status == "CANCELED"
    assert client.get(f"{JOBS}/{run_id}", headers=auth()).json()["status"] == "canceled"
    again = client.delete(f"{JOBS}/{run_id}", headers=auth())
    assert again.status_code == 400 and again.json()["code"] == "failed_precondition"
    # The canceled run no longer holds the in-flight slot: a new request launches.
    assert _launch(client) != run_id


def test_history_newest_first_paged_and_scoped(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    ids = [_launch(client, month=m) for m in (1, 2, 3)]
    _launch(client, month=5, userId=12)
    _succeed(fake_dagster, settings, ids[0])
    page1 = client.get(f"{JOBS}?limit=2", headers=auth()).json()
    assert page1["total"] == 3 and page1["page"] == 1 and page1["limit"] == 2
    assert [j["id"] for j in page1["items"]] == [ids[2], ids[1]]
    page2 = client.get(f"{JOBS}?limit=2&page=2", headers=auth()).json()
    assert [j["id"] for j in page2["items"]] == [ids[0]]
    assert page2["items"][0]["status"] == "succeeded" and page2["items"][0]["url"] is None
    assert client.get(JOBS, headers=auth({"institutionId": 2, "subdomain": "beta"})).json()["total"] == 0
    bad = client.get(f"{JOBS}?limit=101", headers=auth())
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid limit. Must be between 1 and 100"


def test_cache_hit_appears_in_history_as_succeeded_with_link(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    path = Path(settings.storage_location) / KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    fake_dagster.add_materialization(
        "storyboard_usage", "1|2026-03-01", {"storage_key": KEY, "filename": FILENAME, "rows": 5}
    )
    assert client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json() == {"results": {"cached": True}}
    (item,) = client.get(JOBS, headers=auth()).json()["items"]
    assert item["cached"] is True and item["status"] == "succeeded" and item["rows"] == 5
    job = client.get(f"{JOBS}/{item['id']}", headers=auth()).json()
    assert job["url"].startswith("http://testserver/downloads/")


def test_polling_does_not_consume_the_report_budget(settings, fake_dagster: FakeDagster) -> None:
    from tests.api.conftest import build_client

    with build_client(settings.model_copy(update={"rate_limit": "2/minute"}), fake_dagster) as client:
        run_id = _launch(client)
        for _ in range(10):
            assert client.get(f"{JOBS}/{run_id}", headers=auth()).status_code == 200
        assert client.get(f"{STORYBOARD}?month=4&year=2026", headers=auth()).status_code == 200
        assert client.get(f"{STORYBOARD}?month=5&year=2026", headers=auth()).status_code == 429


def _signed_path(settings, key: str = KEY, filename: str = FILENAME, expires_at: int | None = None) -> str:
    exp = expires_at if expires_at is not None else int(datetime.now(UTC).timestamp()) + 600
    url = links.sign(key, filename, exp, settings.link_secret, "http://testserver")
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_download_refuses_tampered_expired_and_foreign_links(client: TestClient, settings) -> None:
    path = Path(settings.storage_location) / KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"secret file")
    other = "storyboard-usage/institution=2/2026-03/storyboard-usage_2_2026-03.xlsx"
    (Path(settings.storage_location) / other).parent.mkdir(parents=True, exist_ok=True)
    (Path(settings.storage_location) / other).write_bytes(b"other tenant")

    good = _signed_path(settings)
    assert client.get(good).content == b"secret file"
    refused = [
        good.replace("institution%3D1", "institution%3D2").replace(
            "institution=1", "institution=2"
        ),  # re-pointed at B's file
        good.replace("exp=", "exp=9"),  # extended expiry
        good.replace("fn=", "fn=x"),  # renamed
        good[: good.index("&sig=")],  # unsigned
        good[:-3] + "AAA",  # bad signature
        _signed_path(settings, expires_at=int(datetime.now(UTC).timestamp()) - 10),  # expired
        _signed_path(settings.model_copy(update={"link_secret": "someone-else"})),  # signed with another key
        _signed_path(settings, key="storyboard-usage/../../../../etc/passwd", filename="passwd"),
    ]
    for url in refused:
        response = client.get(url)
        # (a path with ../ is normalized by the client and may not even reach the route)
        assert response.status_code in ((403, 404) if ".." in url else (403,)), url
        assert response.json()["code"] in ("permission_denied", "not_found")
        assert b"secret file" not in response.content and b"other tenant" not in response.content
    assert "expired" in client.get(refused[5]).json()["message"]


@pytest.mark.parametrize(
    "status, expected",
    [
        ("QUEUED", 204),
        ("STARTED", 204),  # -> CANCELING
        ("CANCELING", 204),  # a cancellation under way: idempotent
        ("SUCCESS", 400),
        ("FAILURE", 400),
        ("CANCELED", 400),
        ("STARTING", 400),  # still starting after the wait: retry later
        ("NOT_STARTED", 400),
        ("SUSPENDED", 400),
    ],
)
def test_cancel_answers_204_or_400_never_500_for_every_run_status(
    client: TestClient, fake_dagster: FakeDagster, monkeypatch: pytest.MonkeyPatch, status: str, expected: int
) -> None:
    """Issue 10 #1: Dagster refuses to terminate STARTING/CANCELING runs; that was a 500."""
    monkeypatch.setattr(jobs, "CANCEL_WAIT_SECONDS", 0.3)
    run_id = _launch(client)
    fake_dagster.runs[run_id].status = status
    response = client.delete(f"{JOBS}/{run_id}", headers=auth())
    assert response.status_code == expected, response.text
    if expected == 400:
        assert response.json()["code"] == "failed_precondition" and response.json()["details"] is None


def test_double_cancel_of_a_running_job_is_idempotent(client: TestClient, fake_dagster: FakeDagster) -> None:
    run_id = _launch(client)
    fake_dagster.runs[run_id].status = "STARTED"
    assert client.delete(f"{JOBS}/{run_id}", headers=auth()).status_code == 204
    assert fake_dagster.runs[run_id].status == "CANCELING"
    assert client.delete(f"{JOBS}/{run_id}", headers=auth()).status_code == 204
    assert client.get(f"{JOBS}/{run_id}", headers=auth()).json()["status"] == "running"


def test_cancel_while_starting_waits_for_the_run_to_start_then_terminates(
    client: TestClient, fake_dagster: FakeDagster
) -> None:
    run_id = _launch(client)
    run = fake_dagster.runs[run_id]
    run.status = "STARTING"
    timer = threading.Timer(0.5, lambda: setattr(run, "status", "STARTED"))
    timer.start()
    try:
        assert client.delete(f"{JOBS}/{run_id}", headers=auth()).status_code == 204
    finally:
        timer.cancel()
    assert run.status == "CANCELING"


def test_cancel_of_a_run_that_finishes_while_starting_is_400(client: TestClient, fake_dagster: FakeDagster) -> None:
    run_id = _launch(client)
    run = fake_dagster.runs[run_id]
    run.status = "STARTING"
    timer = threading.Timer(0.4, lambda: fake_dagster.finish(run_id, "FAILURE"))
    timer.start()
    try:
        response = client.delete(f"{JOBS}/{run_id}", headers=auth())
    finally:
        timer.cancel()
    assert response.status_code == 400 and response.json()["code"] == "failed_precondition"
