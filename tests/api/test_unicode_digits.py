"""Ids that look numeric to str.isdigit but are not ASCII integers get a 400, never a 500."""

from __future__ import annotations

import pytest

from tests.api.conftest import auth


@pytest.mark.parametrize("bad", ["²", "1" * 5000, "٣", "0", "-4"])
def test_sync_school_ids(client, bad: str) -> None:
    response = client.post(
        "/reports/bookings", json={"start_date": 0, "end_date": 1, "school_ids": [bad]}, headers=auth()
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_argument"


@pytest.mark.parametrize("bad", ["²", "1" * 5000])
def test_async_school_ids(client, bad: str) -> None:
    response = client.get(
        f"/institution/reports/catalog?start_date=2026-01-01&end_date=2026-01-31&school_ids={bad}", headers=auth()
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_argument"


def test_user_id_claim_with_unicode_digit(client) -> None:
    response = client.get("/institution/reports/storyboard-usage?month=6&year=2026", headers=auth(userId="²"))
    assert response.status_code == 400 and response.json()["code"] == "invalid_argument"
