"""Seed 002: sync reports computed with the builders, Accept negotiation, validation, tenant scoping."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient

from assets.registry import by_slug
from tests.api.conftest import auth
from tests.api.fake_dagster import FakeDagster

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


MARCH = {"start_date": ms("2026-03-01T00:00:00-03:00"), "end_date": ms("2026-04-01T00:00:00-03:00") - 1}


def _json(response) -> object:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_questions_json_keys_in_seed_order_and_scoped(client: TestClient) -> None:
    rows = _json(client.post("/reports/questions", json=MARCH, headers=auth()))
    assert [r["question_id"] for r in rows] == ["q-1", "q-2"]  # q-x belongs to institution 2
    assert list(rows[0]) == [c.key for c in by_slug("questions").columns]
    assert list(rows[0])[:3] == ["question_id", "school", "group"] and list(rows[0])[-1] == "link"
    assert rows[0]["question_created_at"] == "2026-03-10T13:00:00.000Z"


def test_questions_group_filter_and_foreign_group(client: TestClient) -> None:
    rows = _json(client.post("/reports/questions", json={**MARCH, "group_ids": ["g-b"]}, headers=auth()))
    assert [r["question_id"] for r in rows] == ["q-2"]
    refused = client.post("/reports/questions", json={**MARCH, "group_ids": ["g-a", "g-x"]}, headers=auth())
    assert refused.status_code == 400
    assert refused.json()["message"] == "Invalid group_ids. Not groups of this institution: g-x"


def test_period_bounds_are_inclusive_ms(client: TestClient) -> None:
    created = ms("2026-03-10T13:00:00+00:00")
    rows = _json(client.post("/reports/questions", json={"start_date": created, "end_date": created}, headers=auth()))
    assert [r["question_id"] for r in rows] == ["q-1"]
    assert (
        _json(
            client.post("/reports/questions", json={"start_date": created + 1, "end_date": created + 5}, headers=auth())
        )
        == []
    )


def test_csv_has_portuguese_headers_and_neutralized_formulas(client: TestClient) -> None:
    response = client.post("/reports/questions", json=MARCH, headers={**auth(), "Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "questions_1_2026-03-01_2026-03-31.csv" in response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert table[0] == by_slug("questions").csv_headers
    assert table[0][0] == "ID da pergunta"
    descriptions = [row[table[0].index(by_slug("questions").csv_headers[15])] for row in table[1:]]
    assert not any(d.startswith("=") for d in descriptions)


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("text/*", "text/csv"),
        ("text/csv;q=0.9, application/json;q=0.5", "text/csv"),
        ("application/xml, text/csv", "text/csv"),
        ("application/json;q=0, text/csv", "text/csv"),
    ],
)
def test_accept_negotiation(client: TestClient, accept: str | None, expected: str) -> None:
    headers = auth() if accept is None else {**auth(), "Accept": accept}
    response = client.post("/reports/bookings", json=MARCH, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith(expected)


@pytest.mark.parametrize("path", ["/reports/questions", "/reports/bookings", "/reports/bookings-workload"])
def test_unsupported_accept_is_406(client: TestClient, path: str) -> None:
    for accept in ("application/xml", XLSX, "application/json;q=0"):
        response = client.post(path, json=MARCH, headers={**auth(), "Accept": accept})
        assert response.status_code == 406
        body = response.json()
        assert body["code"] == "invalid_argument" and "text/csv" in body["message"] and body["details"] is None


def test_bookings_school_filter(client: TestClient) -> None:
    assert [r["id"] for r in _json(client.post("/reports/bookings", json=MARCH, headers=auth()))] == ["b-1"]
    assert _json(client.post("/reports/bookings", json={**MARCH, "school_ids": ["101"]}, headers=auth())) == []
    assert [
        r["id"] for r in _json(client.post("/reports/bookings", json={**MARCH, "school_ids": [100]}, headers=auth()))
    ] == ["b-1"]
    foreign = client.post("/reports/bookings", json={**MARCH, "school_ids": ["200"]}, headers=auth())
    assert (
        foreign.status_code == 400
        and foreign.json()["message"] == "Invalid school_ids. Not schools of this institution: 200"
    )
    bad = client.post("/reports/bookings", json={**MARCH, "school_ids": ["abc"]}, headers=auth())
    assert (
        bad.status_code == 400 and bad.json()["message"] == "Invalid school_ids. Must be a list of positive integer ids"
    )


def test_workload_without_body_and_with_schools(client: TestClient) -> None:
    rows = _json(client.post("/reports/bookings-workload", headers=auth()))
    assert rows == [
        {
            "teacher_name": "Prof Lima",
            "teacher_email": "prof@alfa.test",
            "weekly_minutes": 60,
            "discipline_name": "Matemática",
        }
    ]
    assert _json(client.post("/reports/bookings-workload", json={"school_ids": ["101"]}, headers=auth())) == []
    other = _json(
        client.post(
            "/reports/bookings-workload", json={}, headers=auth({"institutionId": 2, "userId": 20, "subdomain": "beta"})
        )
    )
    assert [r["weekly_minutes"] for r in other] == [120]


def test_groups_usage_json_csv_xlsx(client: TestClient) -> None:
    body = {
        **MARCH,
        "group_ids": ["g-a", "g-b"],
        "name": "Relatório de março",
        "show_teachers": True,
        "show_disciplines": True,
    }
    summary = _json(client.post("/reports/groups-usage", json=body, headers=auth()))
    assert list(summary)[:5] == [
        "start_date",
        "end_date",
        "total_questions",
        "average_adjusted_response_time_in_minutes",
        "questions_count_by_discipline",
    ]
    assert summary["start_date"] == "01/03/2026" and summary["end_date"] == "31/03/2026"
    assert summary["total_questions"] == 2 and "teachers" in summary and "disciplines" in summary

    hidden = _json(client.post("/reports/groups-usage", json={**MARCH, "group_ids": ["g-a"]}, headers=auth()))
    assert "teachers" not in hidden or not hidden["teachers"]

    csv_response = client.post("/reports/groups-usage", json=body, headers={**auth(), "Accept": "text/csv"})
    assert csv_response.status_code == 200 and csv_response.text.splitlines()[0].startswith("Nome,")

    xlsx = client.post("/reports/groups-usage", json=body, headers={**auth(), "Accept": XLSX})
    assert xlsx.status_code == 200 and xlsx.headers["content-type"] == XLSX
    assert ".xlsx" in xlsx.headers["content-disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert len(workbook.sheetnames) >= 2


@pytest.mark.parametrize(
    "body, message",
    [
        ({"end_date": 1}, "Missing required field: start_date"),
        ({"start_date": "2026-01-01", "end_date": 1}, "Invalid start_date. Must be an integer"),
        ({"start_date": True, "end_date": 1}, "Invalid start_date. Must be an integer"),
        ({"start_date": 1.5, "end_date": 2}, "Invalid start_date. Must be an integer"),
        (
            {"start_date": -1, "end_date": 2},
            "Invalid start_date. Must be an integer (milliseconds since epoch) between 0 and 4102444799999",
        ),
        ({"start_date": 5, "end_date": 4}, "start_date must be before or equal to end_date"),
        (
            {"start_date": 0, "end_date": 4102444800000},
            "Invalid end_date. Must be an integer (milliseconds since epoch) between 0 and 4102444799999",
        ),
        ({"start_date": 0, "end_date": 10**30}, "Invalid end_date."),
        ({"start_date": 1, "end_date": 2, "group_ids": "g-a"}, "Invalid group_ids. Must be a list of strings"),
        ([1, 2], "Invalid request body. Must be a JSON object"),
    ],
)
def test_body_validation(client: TestClient, body: object, message: str) -> None:
    response = client.post("/reports/questions", json=body, headers=auth())
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_argument"
    assert response.json()["message"].startswith(message)


def test_malformed_or_missing_body(client: TestClient) -> None:
    bad = client.post(
        "/reports/questions", content=b"{not json", headers={**auth(), "Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid request body. Must be a JSON object"
    missing = client.post("/reports/questions", headers=auth())
    assert missing.status_code == 400 and missing.json()["message"] == "Missing request body. Must be a JSON object"
    groups = client.post("/reports/groups-usage", json=MARCH, headers=auth())
    assert groups.status_code == 400 and groups.json()["message"] == "Missing required field: group_ids"
    empty = client.post("/reports/groups-usage", json={**MARCH, "group_ids": []}, headers=auth())
    assert empty.status_code == 400 and "group_ids" in empty.json()["message"]


def test_exact_cached_month_is_served_from_the_partition_file(
    client: TestClient, fake_dagster: FakeDagster, settings
) -> None:
    key = "questions/institution=1/2026-03/questions_1_2026-03.json"
    path = Path(settings.storage_location) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    cached_rows = [{"question_id": "from-the-partition-file"}]
    path.write_text(json.dumps(cached_rows))
    meta = {"storage_key": key, "filename": "questions_1_2026-03.json", "rows": 1, "format": "json"}
    fake_dagster.add_materialization("questions", "1|2026-03-01", meta, age_seconds=30)

    assert _json(client.post("/reports/questions", json=MARCH, headers=auth())) == cached_rows
    # Not exactly the month, or filtered, or another format: computed.
    shifted = {**MARCH, "end_date": MARCH["end_date"] - 1}
    assert _json(client.post("/reports/questions", json=shifted, headers=auth()))[0]["question_id"] == "q-1"
    assert (
        _json(client.post("/reports/questions", json={**MARCH, "group_ids": ["g-a"]}, headers=auth()))[0]["question_id"]
        == "q-1"
    )
    as_csv = client.post("/reports/questions", json=MARCH, headers={**auth(), "Accept": "text/csv"})
    assert "from-the-partition-file" not in as_csv.text
    # Dagster down: still answered (computed).
    fake_dagster.down = True
    assert _json(client.post("/reports/questions", json=MARCH, headers=auth()))[0]["question_id"] == "q-1"


def test_warehouse_failure_is_503_and_a_builder_failure_is_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    services = client.app.state.services
    assert client.post("/reports/bookings-workload", headers=auth()).status_code == 200  # institution now cached

    def down(*_args, **_kwargs):
        raise duckdb.IOException("warehouse file vanished")

    monkeypatch.setattr(services.warehouse, "query_many", down)
    response = client.post("/reports/bookings-workload", headers=auth())
    assert response.status_code == 503 and response.json()["code"] == "unavailable"
    monkeypatch.undo()

    def broken(*_args, **_kwargs):
        raise RuntimeError("builder bug")

    monkeypatch.setattr("api.routers.sync_reports.compute", broken)
    response = client.post("/reports/bookings-workload", headers=auth())
    assert response.status_code == 500 and response.json()["code"] == "internal"
