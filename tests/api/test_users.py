"""UserDirectory: the warehouse user lookup behind notification emails and the library's 403."""

from __future__ import annotations

import pytest

from api.users import UserDirectory, UserInfo
from orchestration.warehouse.client import Warehouse


class CountingWarehouse(Warehouse):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls = 0

    def query_many(self, queries, params=None):  # type: ignore[override]
        self.calls += 1
        return super().query_many(queries, params)


def test_lookup_is_scoped_cached_and_expires(warehouse_url: str) -> None:
    wh = CountingWarehouse(warehouse_url)
    users = UserDirectory(wh, ttl_seconds=60)
    assert users.lookup(10, 1) == UserInfo(email="ana@alfa.test")
    assert users.lookup(10, 2) is None  # user 10 belongs to institution 1 only
    assert users.email(20, 2) == "bia@beta.test"
    calls = wh.calls
    assert users.lookup(10, 1) == UserInfo(email="ana@alfa.test") and users.lookup(10, 2) is None
    assert wh.calls == calls  # both answers (positive and negative) come from the cache
    users.ttl_seconds = 0
    users.lookup(10, 1)
    assert wh.calls == calls + 1


def test_warehouse_failure_raises_on_lookup_but_not_for_email(tmp_path) -> None:
    users = UserDirectory(Warehouse(f"duckdb:///{tmp_path / 'missing.duckdb'}"))
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a missing file
        users.lookup(10, 1)
    assert users.email(10, 1) is None
