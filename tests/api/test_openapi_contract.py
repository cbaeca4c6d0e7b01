"""The OpenAPI document states what the validators enforce (issue 10 #7): a generated client
or a fuzzer finds no mismatch. Catalog dates outside 1900-2100 were 400 with no range in the
schema; OPTIONS /institution/reports/jobs/{id} answered ``Allow: GET`` without DELETE."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth

CATALOG = "/institution/reports/catalog"


def _param(client: TestClient, path: str, method: str, name: str) -> dict:
    operation = client.app.openapi()["paths"][path][method]
    (param,) = [p for p in operation["parameters"] if p["name"] == name]
    return param


def _schema_allows(schema: dict, value: str) -> bool:
    if not re.search(schema["pattern"], value):
        return False
    try:
        date.fromisoformat(value)  # format: date
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "value",
    [
        "1899-12-31",
        "1900-01-01",
        "2026-02-28",
        "2026-02-30",
        "2100-12-31",
        "2101-01-01",
        "0001-01-01",
        "9999-12-31",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00Z",
        "20260101",
        "2026-1-1",
    ],
)
def test_catalog_dates_are_accepted_exactly_when_the_schema_allows_them(client: TestClient, value: str) -> None:
    for name in ("start_date", "end_date"):
        schema = _param(client, CATALOG, "get", name)["schema"]
        assert schema["format"] == "date" and "1900-01-01 to 2100-12-31" in schema["description"]
        params = {"start_date": "1900-01-01", "end_date": "2100-12-31", name: value}
        response = client.get(CATALOG, params=params, headers=auth())
        assert (response.status_code == 200) == _schema_allows(schema, value), (name, value, response.text)
        if response.status_code != 200:
            assert response.status_code == 400 and response.json()["code"] == "invalid_argument"


def test_every_path_answers_options_with_all_its_methods(client: TestClient) -> None:
    paths = client.app.openapi()["paths"]
    samples = {"{job_id}": "some-job", "{key}": "storyboard-usage/x.xlsx"}
    for template, operations in paths.items():
        path = template
        for placeholder, value in samples.items():
            path = path.replace(placeholder, value)
        response = client.options(path)
        assert response.status_code == 204, (path, response.text)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert {m.upper() for m in operations} | {"OPTIONS"} <= allowed, (path, allowed)
    assert client.options("/institution/reports/jobs/abc").headers["allow"] == "DELETE, GET, HEAD, OPTIONS"


def test_a_method_not_allowed_is_405_with_the_full_allow_header(client: TestClient) -> None:
    response = client.put("/institution/reports/jobs/abc", headers=auth())
    assert response.status_code == 405 and response.json()["code"] == "invalid_argument"
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"


@pytest.mark.parametrize("path", ["/reports/questions", "/reports/bookings", "/reports/groups-usage"])
def test_accept_values_that_give_406_are_documented(client: TestClient, path: str) -> None:
    operation = client.app.openapi()["paths"][path]["post"]
    assert "406" in operation["responses"]
    accept = [p for p in operation["parameters"] if p["name"].lower() == "accept"][0]
    assert "406" in accept["description"]
    body = {"start_date": 1772323200000, "end_date": 1775001599999, "group_ids": ["g-a"]}
    response = client.post(path, json=body, headers={**auth(), "Accept": "application/xml"})
    assert response.status_code == 406 and response.json()["code"] == "invalid_argument"
