"""Encore error bodies: validation (no 422), unknown routes, internal errors with a request id."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth

STORYBOARD = "/institution/reports/storyboard-usage"
CATALOG = "/institution/reports/catalog"


def _error(response, status: int, code: str = "invalid_argument") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body == {"code": code, "message": body["message"], "details": None}
    return body["message"]


@pytest.mark.parametrize("month", ["0", "13", "-1", "abc", "6.5", ""])
def test_invalid_month_has_the_seed_message(client: TestClient, month: str) -> None:
    message = _error(client.get(f"{STORYBOARD}?month={month}&year=2026", headers=auth()), 400)
    assert message == "Invalid month. Must be between 1 and 12"


@pytest.mark.parametrize("year", ["1899", "2101", "twenty"])
def test_invalid_year_names_range(client: TestClient, year: str) -> None:
    assert (
        _error(client.get(f"{STORYBOARD}?month=6&year={year}", headers=auth()), 400)
        == "Invalid year. Must be between 1900 and 2100"
    )


def test_missing_parameter_names_it_and_its_range(client: TestClient) -> None:
    assert (
        _error(client.get(f"{STORYBOARD}?year=2026", headers=auth()), 400)
        == "Missing required parameter: month. Must be between 1 and 12"
    )


def test_catalog_dates(client: TestClient) -> None:
    message = _error(client.get(f"{CATALOG}?start_date=2026-06-02&end_date=2026-06-01", headers=auth()), 400)
    assert message == "start_date must be before or equal to end_date"
    message = _error(client.get(f"{CATALOG}?start_date=2026-13-01&end_date=2026-06-01", headers=auth()), 400)
    assert message == "Invalid start_date. Must be an ISO date (YYYY-MM-DD)"
    message = _error(client.get(f"{CATALOG}?start_date=2026-01-01", headers=auth()), 400)
    assert message == "Missing required parameter: end_date. Must be an ISO date (YYYY-MM-DD)"


@pytest.mark.parametrize(
    "start, end", [("0001-01-01", "2026-01-01"), ("2026-01-01", "9999-12-31"), ("1899-12-31", "1900-01-01")]
)
def test_catalog_dates_outside_the_supported_span(client: TestClient, start: str, end: str) -> None:
    message = _error(client.get(f"{CATALOG}?start_date={start}&end_date={end}", headers=auth()), 400)
    assert message.endswith("Must be an ISO date (YYYY-MM-DD) between 1900-01-01 and 2100-12-31")


def test_extreme_but_valid_inputs_do_not_500(client: TestClient) -> None:
    assert client.get(f"{STORYBOARD}?month=12&year=2100", headers=auth()).status_code == 200
    assert client.get(f"{STORYBOARD}?month=1&year=1900", headers=auth()).status_code == 200
    assert client.get(f"{CATALOG}?start_date=1900-01-01&end_date=2100-12-31", headers=auth()).status_code == 200
    assert client.get(f"{STORYBOARD}?month=6&year=2026&month=7", headers=auth()).status_code == 200


@pytest.mark.parametrize("school_ids", ["a", "10,x", "0", "-1", "10,,20", "1.5"])
def test_catalog_invalid_school_ids(client: TestClient, school_ids: str) -> None:
    message = _error(
        client.get(f"{CATALOG}?start_date=2026-01-01&end_date=2026-01-31&school_ids={school_ids}", headers=auth()), 400
    )
    assert message.startswith("Invalid school_ids. Must be comma-separated positive integers")


def test_unknown_route_and_method(client: TestClient) -> None:
    assert _error(client.get("/nope", headers=auth()), 404, "not_found") == "Not found: GET /nope"
    _error(client.put("/institution/library/contents", headers=auth()), 405)


def test_auth_is_checked_before_parameters(client: TestClient) -> None:
    _error(client.get(f"{STORYBOARD}?month=13&year=2026"), 401, "unauthenticated")


def test_unexpected_exception_is_500_internal_with_request_id(client: TestClient, monkeypatch, caplog) -> None:
    services = client.app.state.services

    def boom(*_a, **_k):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(services.launcher, "request", boom)
    with caplog.at_level(logging.ERROR, logger="api"):
        response = client.get(f"{STORYBOARD}?month=6&year=2026", headers=auth())
    message = _error(response, 500, "internal")
    rid = response.headers["X-Request-Id"]
    assert rid and rid in message
    assert "secret" not in response.text and "Traceback" not in response.text
    assert any(rid in r.getMessage() for r in caplog.records)
    assert any(
        "secret internals" in (r.exc_text or "") or (r.exc_info and "secret internals" in str(r.exc_info[1]))
        for r in caplog.records
    )


def test_every_response_has_a_request_id(client: TestClient) -> None:
    ok = client.get("/institution/library/contents", headers={**auth(), "X-Request-Id": "abc-123"})
    assert ok.headers["X-Request-Id"] == "abc-123"
    assert client.get("/nope").headers["X-Request-Id"]


def test_openapi_documents_errors_and_has_no_422(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in str(schema)
    paths = schema["paths"]
    for path in (
        "/institution/reports/storyboard-usage",
        "/institution/reports/catalog",
        "/reports/questions",
        "/reports/bookings",
        "/reports/bookings-workload",
        "/reports/groups-usage",
        "/institution/library/contents",
        "/institution/reports/jobs/{job_id}",
        "/institution/reports/jobs",
    ):
        for op in paths[path].values():
            assert "422" not in op["responses"]
            for status in ("400", "401"):
                assert op["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith(
                    "/ErrorBody"
                ), (path, status)
    storyboard = paths["/institution/reports/storyboard-usage"]["get"]
    params = {p["name"]: p for p in storyboard["parameters"]}
    assert params["month"]["schema"]["minimum"] == 1 and params["month"]["schema"]["maximum"] == 12
    assert "429" in storyboard["responses"] and "503" in storyboard["responses"]
    assert "406" in paths["/reports/questions"]["post"]["responses"]
    assert "403" in paths["/institution/library/contents"]["get"]["responses"]
    assert client.get("/docs").status_code == 200
