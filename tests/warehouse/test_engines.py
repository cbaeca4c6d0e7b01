"""Every report, every institution of the tiny warehouse: the same cells from DuckDB,
from PostgreSQL through ADBC and from PostgreSQL through the Redshift path
(server-side cursor in Arrow batches), and every extracted column typed exactly as
schema.sql declares it, so no builder has to cast what the engine sent.

One generation (fixed clock) is loaded into both engines, so the rows are the same
by construction; the Redshift path runs against the real PostgreSQL server as far
as the protocol allows (see ``orchestration/warehouse/client.py``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.registry import REPORTS
from assets.spec import ReportRequest
from assets.warehouse.tables import table_schema
from orchestration.institutions import list_institutions
from orchestration.periods import month_bounds, previous_month
from orchestration.produce import Computed, build_request, compute, render_file
from orchestration.settings import Settings
from orchestration.warehouse import client
from orchestration.warehouse.client import Warehouse
from orchestration.warehouse.load import load_duckdb, load_postgres
from tests.services.postgres import create_database

pytestmark = pytest.mark.services
ENGINES = ("duckdb", "postgres", "redshift")


@pytest.fixture(scope="module")
def urls(tiny: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> dict[str, str]:
    path = load_duckdb(tiny, tmp_path_factory.mktemp("engines") / "tiny.duckdb")
    pg = create_database(postgres_url)
    load_postgres(tiny, pg)
    return {"duckdb": f"duckdb:///{path}", "postgres": pg, "redshift": pg.replace("postgresql://", "redshift://", 1)}


@pytest.fixture(scope="module")
def requests(urls: dict[str, str], now: datetime) -> list[ReportRequest]:
    """Each institution's last full month before the generator's clock (its own timezone)."""
    as_of = now.replace(tzinfo=UTC)
    out = []
    for inst in list_institutions(Warehouse(urls["duckdb"])):
        start, end = month_bounds(previous_month(as_of.astimezone(inst.tz).date()), inst.timezone)
        out.append(build_request(inst, start, end, Settings().report_options(), as_of=as_of))
    return out


def test_the_engines_are_the_three_paths(urls: dict[str, str]) -> None:
    assert [Warehouse(urls[e]).engine for e in ENGINES] == list(ENGINES)


def _files(spec_name: str, computed: Computed, request: ReportRequest, out: Path) -> dict[str, bytes]:
    spec = REPORTS[spec_name]
    files = {}
    for fmt in ("csv", "json"):
        if fmt in spec.formats:
            path = out / f"{spec.slug}.{request.institution.id}.{fmt}"
            render_file(spec, computed, request, fmt, path)
            files[fmt] = path.read_bytes()
    return files


@pytest.mark.parametrize("report", sorted(REPORTS))
def test_same_cells_and_declared_dtypes_on_every_engine(
    report: str, urls: dict[str, str], requests: list[ReportRequest], tmp_path: Path
) -> None:
    spec = REPORTS[report]
    rows = 0
    for request in requests:
        results: dict[str, tuple[Computed, dict[str, bytes]]] = {}
        for engine in ENGINES:
            computed = compute(spec, request, Warehouse(urls[engine]))
            for name, frame in computed.frames.items():
                # Arrow-native on every path: the declared dtypes, also for empty results.
                assert frame.schema == table_schema(name, frame.columns), (engine, name)
            results[engine] = (computed, _files(report, computed, request, tmp_path / engine))
        reference, reference_files = results["duckdb"]
        rows += reference.frame.height
        for engine in ("postgres", "redshift"):
            computed, files = results[engine]
            for name, frame in reference.frames.items():
                sort = frame.columns
                assert_frame_equal(computed.frames[name].sort(sort), frame.sort(sort))
            assert_frame_equal(computed.frame, reference.frame)
            if spec.summary is not None:
                assert computed.spec.summary is not None
                assert json.dumps(spec.summary(computed.frames, request), default=str) == json.dumps(
                    spec.summary(reference.frames, request), default=str
                )
            assert files == reference_files, (engine, report, request.institution.id)
    assert rows > 0, f"{report}: the tiny warehouse's last month gives no rows anywhere"


def test_redshift_path_reads_in_bounded_batches(
    urls: dict[str, str], requests: list[ReportRequest], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches smaller than the result: several Arrow batches, one frame, same rows as ADBC."""
    spec = REPORTS["storyboard_usage"]
    request = requests[0]
    adbc = compute(spec, request, Warehouse(urls["postgres"])).frames["story_views"]
    assert adbc.height > 7
    seen: list[int] = []
    original = client._batch_to_arrow

    def spy(rows: list[tuple[Any, ...]], names: list[str], types: list[Any]) -> Any:
        seen.append(len(rows))
        return original(rows, names, types)

    monkeypatch.setattr(client, "REDSHIFT_BATCH_ROWS", 7)
    monkeypatch.setattr(client, "_batch_to_arrow", spy)
    cursor = compute(spec, request, Warehouse(urls["redshift"])).frames["story_views"]
    assert max(seen) == 7 and len(seen) > 1
    assert_frame_equal(cursor.sort(cursor.columns), adbc.sort(adbc.columns))


@pytest.mark.parametrize("engine", ENGINES)
def test_parameters_bind_as_values_never_as_sql(engine: str, urls: dict[str, str]) -> None:
    """``:name`` values stay values (bound, or typed literals on ADBC): quotes, dollar tags, a reused name, NULL."""
    wh = Warehouse(urls[engine])
    for hostile in ("x' OR '1'='1", "$p$ OR TRUE --", "$$; DROP TABLE users; --", "back\\slash'\n:name"):
        assert wh.query("SELECT id FROM institutions WHERE name = :name", {"name": hostile}).height == 0
        assert wh.query("SELECT CAST(:name AS VARCHAR) AS v", {"name": hostile})["v"].to_list() == [hostile]
    ids = wh.query("SELECT id FROM institutions WHERE id IN (:a, :b) ORDER BY id", {"a": 1, "b": 3})
    assert ids["id"].to_list() == [1, 3]
    both = wh.query("SELECT id FROM institutions WHERE id = :i OR id + 1 = :i + 1 ORDER BY id", {"i": 2})
    assert both["id"].to_list() == [2]
    none = wh.query("SELECT id FROM institutions WHERE :n IS NULL AND id = 1", {"n": None})
    assert none["id"].to_list() == [1]
    when = wh.query("SELECT COUNT(*) AS n FROM story_views WHERE viewed_at < :t", {"t": datetime(2000, 1, 1)})
    assert when.schema == pl.Schema({"n": pl.Int64()}) and when["n"].to_list() == [0]


def test_adbc_connections_are_reused_and_a_dead_one_is_replaced(urls: dict[str, str]) -> None:
    """Opening an ADBC connection is expensive, so they are pooled; a connection the
    server dropped while idle must not fail the next query."""
    import psycopg2

    wh = Warehouse(urls["postgres"])
    first = wh.query("SELECT pg_backend_pid() AS pid")["pid"].item()
    assert wh.query("SELECT pg_backend_pid() AS pid")["pid"].item() == first  # the idle one, reused
    con = psycopg2.connect(urls["postgres"])
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (first,))
    finally:
        con.close()
    again = wh.query("SELECT pg_backend_pid() AS pid")["pid"].item()
    assert again != first
    with pytest.raises(Exception, match="read-only"):
        wh.query("CREATE TABLE pooled_write_attempt (id INTEGER)")
    assert wh.query("SELECT 1 AS ok")["ok"].to_list() == [1]  # the failed connection was not kept broken
