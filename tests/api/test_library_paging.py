"""Library paging on a generated institution with thousands of contents: the
per-day count and the windowed page query give exactly the full sort's pages,
and a replaced warehouse file is picked up by the shared DuckDB reader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from orchestration.settings import Settings
from orchestration.warehouse.generate import generate_warehouse, with_big_institution
from orchestration.warehouse.scales import SCALES
from tests.api.conftest import SECRET, auth, build_client
from tests.api.fake_dagster import FakeDagster

URL = "/institution/library/contents"
SCALE = with_big_institution(SCALES["tiny"], users=40, storyboards=6, library_contents=3000)
BIG = SCALE.institutions


@pytest.fixture(scope="module")
def big_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("library_big") / "warehouse.duckdb"
    generate_warehouse(SCALE, 7, str(path))
    return path


def _admin(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return int(
            con.execute(
                "SELECT id FROM users WHERE institution_id = ? AND privilege_id <> 4 AND deleted_at IS NULL ORDER BY id LIMIT 1",
                [BIG],
            ).fetchone()[0]
        )


def _client(path: Path, home: Path) -> TestClient:
    settings = Settings(
        home=home,
        warehouse_url=f"duckdb:///{path}",
        jwt_secret=SECRET,
        jwt_algorithms="HS256",
        public_base_url="http://testserver",
        rate_limit="1000/minute",
    )
    return build_client(settings, FakeDagster())


@pytest.fixture
def big_client(big_warehouse: Path, tmp_path: Path) -> Iterator[tuple[TestClient, int]]:
    with _client(big_warehouse, tmp_path) as client:
        yield client, _admin(big_warehouse)


def _expected(path: Path, where: str, params: list, limit: int, offset: int) -> tuple[int, list[int]]:
    with duckdb.connect(str(path), read_only=True) as con:
        cond = f"institution_id = ? AND deleted_at IS NULL AND type IN ('text', 'video_online', 'html5'){where}"
        total = con.execute(f"SELECT COUNT(*) FROM library_contents WHERE {cond}", [BIG, *params]).fetchone()[0]
        ids = con.execute(
            f"SELECT id FROM library_contents WHERE {cond} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            [BIG, *params, limit, offset],
        ).fetchall()
    return int(total), [int(r[0]) for r in ids]


@pytest.mark.parametrize(
    ("query", "where", "params"),
    [("", "", []), ("&type=video_online", " AND type = ?", ["video_online"]), ("&status=0", " AND status = ?", [0])],
)
def test_pages_match_the_full_sort(big_client, big_warehouse: Path, query: str, where: str, params: list) -> None:
    client, admin = big_client
    total, _ = _expected(big_warehouse, where, params, 1, 0)
    assert total > 500
    last_page = (total + 99) // 100
    for page, limit in [(1, 20), (2, 20), (7, 13), (last_page, 100), (last_page + 1, 100), (1, 100)]:
        body = client.get(
            f"{URL}?page={page}&limit={limit}{query}", headers=auth({"institutionId": BIG, "userId": admin})
        ).json()
        expected_total, expected_ids = _expected(big_warehouse, where, params, limit, (page - 1) * limit)
        assert body["total"] == expected_total
        assert [item["id"] for item in body["items"]] == expected_ids, (page, limit)


def test_links_of_the_page_are_attached(big_client, big_warehouse: Path) -> None:
    client, admin = big_client
    items = client.get(f"{URL}?limit=100", headers=auth({"institutionId": BIG, "userId": admin})).json()["items"]
    with duckdb.connect(str(big_warehouse), read_only=True) as con:
        rows = con.execute(
            f"SELECT content_id, ref_id FROM library_content_links WHERE institution_id = ? AND link_type = 'cycle' "
            f"AND content_id IN ({', '.join(str(i['id']) for i in items)}) ORDER BY content_id, ref_id",
            [BIG],
        ).fetchall()
    expected: dict[int, list[int]] = {}
    for content, ref in rows:
        expected.setdefault(int(content), []).append(int(ref))
    assert rows and {i["id"]: i["cycleIds"] for i in items if i["cycleIds"]} == expected


def test_counts_follow_a_replaced_warehouse_file(big_warehouse: Path, tmp_path: Path) -> None:
    """The per-day counts are memoized per warehouse file: a new file means new counts."""
    import os
    import shutil

    live = tmp_path / "live.duckdb"
    shutil.copyfile(big_warehouse, live)
    headers = auth({"institutionId": BIG, "userId": _admin(live)})
    with _client(live, tmp_path) as client:
        before = client.get(f"{URL}?limit=5", headers=headers).json()
        assert client.get(f"{URL}?limit=5&page=2", headers=headers).json()["total"] == before["total"]
        aside = tmp_path / "aside.duckdb"
        shutil.copyfile(live, aside)
        with duckdb.connect(str(aside)) as con:  # soft-delete the newest content, then swap the file in
            con.execute("UPDATE library_contents SET deleted_at = now() WHERE id = ?", [before["items"][0]["id"]])
        os.replace(aside, live)
        after = client.get(f"{URL}?limit=5", headers=headers).json()
    assert after["total"] == before["total"] - 1
    assert [i["id"] for i in after["items"]] == [i["id"] for i in before["items"]][1:] + [after["items"][-1]["id"]]
