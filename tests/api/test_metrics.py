"""GET /metrics: Prometheus text with per-route request counts and latency, async-request
outcomes (cache hit / launched / joined), 429s and the outbox gauges; no JWT, no rate limit,
optional bearer token."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import auth, build_client
from tests.api.fake_dagster import FakeDagster

STORYBOARD = "/institution/reports/storyboard-usage"


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_per_route_template_with_latency(client: TestClient, fake_dagster: FakeDagster) -> None:
    before = scrape(client)
    run_id = client.get(f"{STORYBOARD}?month=3&year=2026", headers=auth()).json()["results"]["id"]
    for _ in range(2):
        assert client.get(f"/institution/reports/jobs/{run_id}", headers=auth()).status_code == 200
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)

    template = "/institution/reports/jobs/{job_id}"
    labels = {"route": template, "method": "GET", "status": "200"}
    assert value(after, "lxp_api_requests_total", **labels) - value(before, "lxp_api_requests_total", **labels) == 2
    assert not any(
        name == "lxp_api_requests_total" and ("route", f"/institution/reports/jobs/{run_id}") in lbl
        for name, lbl in after
    )  # raw paths never become labels
    unmatched = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert (
        value(after, "lxp_api_requests_total", **unmatched) - value(before, "lxp_api_requests_total", **unmatched) == 1
    )
    count = {"route": template, "method": "GET"}
    assert (
        value(after, "lxp_api_request_duration_seconds_count", **count)
        - value(before, "lxp_api_request_duration_seconds_count", **count)
        == 2
    )
    assert value(after, "lxp_api_request_duration_seconds_sum", **count) > 0
    # Scrapes themselves are not counted.
    assert value(after, "lxp_api_requests_total", route="/metrics", method="GET", status="200") == 0


def test_launch_join_and_cache_hit_outcomes(client: TestClient, fake_dagster: FakeDagster, settings) -> None:
    client.app.state.outbox_collector.ttl = 0  # type: ignore[attr-defined]  # read the outbox on every scrape
    before = scrape(client)
    first = client.get(f"{STORYBOARD}?month=4&year=2026", headers=auth()).json()["results"]["id"]
    second = client.get(f"{STORYBOARD}?month=4&year=2026", headers=auth({"userId": 12})).json()["results"]["id"]
    assert first == second
    key = "storyboard-usage/institution=1/2026-05/storyboard-usage_1_2026-05.xlsx"
    path = Path(settings.storage_location) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK-fake-xlsx")
    meta = {"storage_key": key, "filename": path.name, "rows": 3, "format": "xlsx"}
    fake_dagster.add_materialization("storyboard_usage", "1|2026-05-01", meta, age_seconds=60)
    assert client.get(f"{STORYBOARD}?month=5&year=2026", headers=auth()).json() == {"results": {"cached": True}}
    after = scrape(client)

    def delta(outcome: str) -> float:
        labels = {"report": "storyboard-usage", "outcome": outcome}
        return value(after, "lxp_api_report_requests_total", **labels) - value(
            before, "lxp_api_report_requests_total", **labels
        )

    assert (delta("launched"), delta("joined"), delta("cache_hit")) == (1, 1, 1)
    # The cache hit queued a notification; with no channel configured it stays pending.
    assert value(after, "lxp_outbox_up") == 1
    assert value(after, "lxp_outbox_notifications", state="pending") >= 1
    assert value(after, "lxp_outbox_backlog") >= value(after, "lxp_outbox_notifications", state="pending")
    assert value(after, "lxp_outbox_notifications", state="waiting") >= 2  # launcher + joiner wait for the run
    assert ("lxp_outbox_dead", frozenset()) in after


def test_rate_limited_requests_are_counted_and_metrics_is_not_limited(settings, fake_dagster: FakeDagster) -> None:
    limited = settings.model_copy(update={"rate_limit": "2/minute"})
    with build_client(limited, fake_dagster) as client:
        before = scrape(client)
        statuses = [client.get(f"{STORYBOARD}?month=13&year=2026", headers=auth()).status_code for _ in range(4)]
        assert statuses == [400, 400, 429, 429]
        for _ in range(5):  # well past the limit: /metrics stays reachable without a token
            after = scrape(client)
    assert (
        value(after, "lxp_api_rate_limited_total", route=STORYBOARD)
        - value(before, "lxp_api_rate_limited_total", route=STORYBOARD)
        == 2
    )
    labels = {"route": STORYBOARD, "method": "GET", "status": "429"}
    assert value(after, "lxp_api_requests_total", **labels) - value(before, "lxp_api_requests_total", **labels) == 2


def test_optional_bearer_token(settings, fake_dagster: FakeDagster) -> None:
    protected = settings.model_copy(update={"metrics_token": "scrape-token-0123456789"})
    with build_client(protected, fake_dagster) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401 and missing.json()["code"] == "unauthenticated"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        # A platform JWT is not the metrics token either.
        assert client.get("/metrics", headers=auth()).status_code == 401
        assert (
            "lxp_api_requests_total"
            in client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"}).text
        )


def test_metrics_is_not_in_the_public_openapi(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
