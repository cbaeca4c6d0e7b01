"""An institution whose warehouse row is unusable gets a clear error, not a crash or a fake outage."""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.settings import Settings
from tests.api.conftest import FIXTURE_SQL, SCHEMA, auth, build_client
from tests.api.fake_dagster import FakeDagster


def test_unknown_timezone_is_reported_plainly(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "bad.duckdb"
    con = duckdb.connect(str(path))
    con.execute(SCHEMA.read_text())
    con.execute(FIXTURE_SQL)
    con.execute("UPDATE institutions SET timezone = 'Mars/Olympus_Mons' WHERE id = 1")
    con.close()
    bad = settings.model_copy(update={"warehouse_url": f"duckdb:///{path}"})
    fake = FakeDagster()
    with build_client(bad, fake) as client:
        response = client.get("/institution/reports/storyboard-usage?month=6&year=2026", headers=auth())
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal" and "Mars/Olympus_Mons" in body["message"] and body["details"] is None
