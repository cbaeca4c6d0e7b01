"""Loading the same frames into DuckDB and a real PostgreSQL gives the same warehouse."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orchestration.warehouse.client import Warehouse
from orchestration.warehouse.generate import generate_warehouse
from orchestration.warehouse.load import load_duckdb, load_duckdb_chunks, load_postgres, load_postgres_chunks
from orchestration.warehouse.tables import table_schemas

Frames = dict[str, pl.DataFrame]

COUNTS = " UNION ALL ".join(f"SELECT '{t}' AS tbl, CAST(count(*) AS BIGINT) AS n FROM {t}" for t in table_schemas())

# Portable aggregates a report would run: per-institution/month counts, distinct pairs,
# accent-bearing text, nulls, and exact timestamps.
QUERIES = {
    "usage_pairs": """
        SELECT institution_id, CAST(count(*) AS BIGINT) AS pairs
        FROM (SELECT DISTINCT institution_id, user_id, storyboard_id FROM story_views
              WHERE viewed_at >= :start AND viewed_at < :end
              UNION
              SELECT DISTINCT institution_id, user_id, storyboard_id FROM storyboard_reactions
              WHERE reacted_at >= :start AND reacted_at < :end) p
        GROUP BY institution_id ORDER BY institution_id""",
    "views_bounds": """
        SELECT institution_id, min(viewed_at) AS first_view, max(viewed_at) AS last_view,
               CAST(count(DISTINCT story_id) AS BIGINT) AS stories
        FROM story_views WHERE institution_id = :iid GROUP BY institution_id""",
    "reactions": """
        SELECT kind, CAST(count(*) AS BIGINT) AS n FROM storyboard_reactions GROUP BY kind ORDER BY kind""",
    "people": """
        SELECT id, name, email, cpf, cnpj, privilege_id, created_at, blocked_at, deleted_at
        FROM users WHERE institution_id = :iid ORDER BY id""",
    "null_tax_ids": """
        SELECT CAST(sum(CASE WHEN cpf IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS no_cpf,
               CAST(sum(CASE WHEN cnpj IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS no_cnpj FROM users""",
    "accented_titles": """
        SELECT CAST(count(*) AS BIGINT) AS n FROM library_contents WHERE lower(title) LIKE '%introdução%'""",
    "catalog": """
        SELECT c.id, c.title, c.status, c.published_at,
               CAST((SELECT count(*) FROM course_views v WHERE v.course_id = c.id) AS BIGINT) AS views,
               CAST((SELECT count(*) FROM enrollments e WHERE e.course_id = c.id AND e.completed_at IS NOT NULL) AS BIGINT) AS done
        FROM courses c ORDER BY c.id""",
    "library": """
        SELECT type, monolith_type, status, CAST(count(*) AS BIGINT) AS n, CAST(sum(duration) AS BIGINT) AS seconds,
               CAST(sum(CASE WHEN show_in_student_catalog THEN 1 ELSE 0 END) AS BIGINT) AS in_catalog
        FROM library_contents GROUP BY type, monolith_type, status ORDER BY type, status""",
}
PARAMS = {"start": datetime(2026, 10, 1, 3, 0), "end": datetime(2026, 11, 1, 3, 0), "iid": 1}


@pytest.fixture(scope="module")
def duck_url(tiny: Frames, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("wh") / "tiny.duckdb"
    load_duckdb(tiny, path)
    return f"duckdb:///{path}"


def _counts(url: str) -> dict[str, int]:
    return dict(Warehouse(url).query(COUNTS).iter_rows())


def test_duckdb_load_reads_back_every_row(tiny: Frames, duck_url: str) -> None:
    assert _counts(duck_url) == {t: f.height for t, f in tiny.items()}
    back = Warehouse(duck_url).query("SELECT * FROM users ORDER BY id")
    assert_frame_equal(back, tiny["users"].sort("id"))
    back = Warehouse(duck_url).query("SELECT * FROM library_contents ORDER BY id")
    assert_frame_equal(back, tiny["library_contents"].sort("id"), check_dtypes=False)


def test_duckdb_has_indexes_and_institution_time_order(duck_url: str) -> None:
    con = duckdb.connect(duck_url.removeprefix("duckdb:///"), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
        order = con.sql("SELECT institution_id, viewed_at FROM story_views").pl()
    finally:
        con.close()
    assert {"ix_story_views_inst_time", "ix_library_inst_created", "ix_users_inst"} <= names
    assert order.equals(order.sort("institution_id", "viewed_at"))


def test_duckdb_load_is_atomic_and_respects_replace(tiny: Frames, tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    load_duckdb({"institutions": tiny["institutions"]}, path)
    assert _counts(f"duckdb:///{path}")["institutions"] == tiny["institutions"].height
    with pytest.raises(FileExistsError):
        load_duckdb(tiny, path, replace=False)
    broken = dict(tiny, users=tiny["users"].with_columns(pl.lit(None, pl.String).alias("email")))
    with pytest.raises(duckdb.ConstraintException):  # email is NOT NULL: the load fails midway
        load_duckdb(broken, path)
    assert _counts(f"duckdb:///{path}")["users"] == 0  # the previous warehouse is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb"]  # no temp files left behind
    load_duckdb(tiny, path)
    assert _counts(f"duckdb:///{path}")["users"] == tiny["users"].height


def test_generate_warehouse_returns_row_counts(tmp_path: Path, now: datetime) -> None:
    path = tmp_path / "cli.duckdb"
    counts = generate_warehouse("tiny", 42, str(path), now=now)
    assert counts == _counts(f"duckdb:///{path}")
    assert counts["users"] > 0


def _table(url: str, table: str) -> pl.DataFrame:
    return Warehouse(url).query(f"SELECT * FROM {table}")


@pytest.mark.services
def test_a_warehouse_loaded_in_chunks_is_the_one_loaded_at_once(
    tmp_path: Path, postgres_db: str, now: datetime
) -> None:
    """What ``lxp-reports generate`` does for big scales (chunks of institutions, indexes once at the end)
    loads the same rows in the same order as loading the whole warehouse, into DuckDB and PostgreSQL."""
    from orchestration.warehouse.generate import generate_chunks, with_institutions

    chunks = list(generate_chunks(with_institutions("tiny", 5), 42, now, chunk_institutions=2))
    whole = {t: pl.concat([c[t] for c in chunks]) for t in table_schemas()}
    at_once, in_chunks = tmp_path / "once.duckdb", tmp_path / "chunks.duckdb"
    load_duckdb(whole, at_once)
    load_duckdb_chunks(iter(chunks), in_chunks)
    load_postgres_chunks(iter(chunks), postgres_db)
    assert _counts(f"duckdb:///{in_chunks}") == _counts(postgres_db) == {t: f.height for t, f in whole.items()}
    for table in ("institutions", "users", "story_views", "disciplines", "questions", "bookings"):
        expected = _table(f"duckdb:///{at_once}", table)
        assert_frame_equal(_table(f"duckdb:///{in_chunks}", table), expected)
        # PostgreSQL does not promise the insertion order: compare as sets of rows
        assert_frame_equal(
            _table(postgres_db, table).sort(expected.columns), expected.sort(expected.columns), check_dtypes=False
        )


@pytest.mark.services
def test_postgres_and_duckdb_answer_identically(tiny: Frames, duck_url: str, postgres_db: str) -> None:
    load_postgres(tiny, postgres_db)
    assert _counts(postgres_db) == _counts(duck_url)
    pg, duck = Warehouse(postgres_db), Warehouse(duck_url)
    for iid in tiny["institutions"]["id"]:
        params = dict(PARAMS, iid=iid)
        got_pg, got_duck = pg.query_many(QUERIES, params), duck.query_many(QUERIES, params)
        for name in QUERIES:
            assert got_pg[name].height > 0, name
            assert_frame_equal(got_pg[name], got_duck[name], check_dtypes=False)
    assert pg.query(QUERIES["accented_titles"])["n"].item() > 0


@pytest.mark.services
def test_postgres_reload_replaces_and_generate_warehouse_accepts_url(
    tiny: Frames, postgres_db: str, now: datetime
) -> None:
    load_postgres({"institutions": tiny["institutions"]}, postgres_db)
    assert _counts(postgres_db)["users"] == 0
    counts = generate_warehouse("tiny", 42, postgres_db, now=now)
    assert counts == _counts(postgres_db) == {t: f.height for t, f in tiny.items()}
    back = Warehouse(postgres_db).query("SELECT * FROM users ORDER BY id")
    assert_frame_equal(back, tiny["users"].sort("id"), check_dtypes=False)
    indexes = Warehouse(postgres_db).query("SELECT indexname FROM pg_indexes WHERE tablename = 'story_views'")
    assert "ix_story_views_inst_time" in indexes["indexname"].to_list()
