"""The four reports' SQL against a real warehouse (DuckDB file; PostgreSQL server when
available) loaded with generate_stift data, then built: invariants against the source."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from assets.reports import bookings, bookings_workload, groups_usage, questions
from assets.spec import Institution, ReportRequest
from orchestration.warehouse.client import Warehouse
from tests.stift.conftest import INSTITUTIONS, NOW

UTC = ZoneInfo("UTC")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.services)])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    name = "stift_warehouse" if request.param == "duckdb" else "stift_pg_warehouse"
    return Warehouse(request.getfixturevalue(name))


def period(inst_index: int, start: datetime, end: datetime, **filters: Any) -> ReportRequest:
    """[start, end) as local wall-clock times of the institution."""
    id_, name, sub, tz = INSTITUTIONS[inst_index]
    zone = ZoneInfo(tz)
    return ReportRequest(
        institution=Institution(id_, name, sub, tz),
        start=start.replace(tzinfo=zone),
        end=end.replace(tzinfo=zone),
        as_of=NOW.replace(tzinfo=UTC),
        filters=filters,
        options={"question_url_template": "https://{subdomain}.stift.app/q/{question_id}"},
    )


def month(inst_index: int, year: int, month_: int, **filters: Any) -> ReportRequest:
    nxt = (year + month_ // 12, month_ % 12 + 1)
    return period(inst_index, datetime(year, month_, 1), datetime(nxt[0], nxt[1], 1), **filters)


def in_period(frame: pl.DataFrame, req: ReportRequest, col: str) -> pl.DataFrame:
    p = req.query_params()
    return frame.filter(
        (pl.col("institution_id") == p["institution_id"])
        & (pl.col(col) >= p["start_utc"])
        & (pl.col(col) < p["end_utc"])
    )


def run(warehouse: Warehouse, module: Any, req: ReportRequest) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    frames = warehouse.query_many(module.SPEC.queries, req.query_params())
    return frames, module.SPEC.build(frames, req)


@pytest.mark.parametrize("inst_index", [0, 1])
def test_questions_rows_match_the_source(warehouse: Warehouse, stift_frames, inst_index: int) -> None:
    req = period(inst_index, datetime(2025, 12, 1), datetime(2026, 12, 1))  # twelve months
    _, out = run(warehouse, questions, req)
    source = in_period(stift_frames["questions"], req, "created_at")
    assert out.height == source.height > 0
    assert set(out["question_id"]) == set(source["id"])
    assert out.columns == [c.key for c in questions.SPEC.columns]
    sub = INSTITUTIONS[inst_index][2]
    assert (out["link"] == f"https://{sub}.stift.app/q/" + out["question_id"]).all()
    assert out["question_created_at"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").all()
    anon = out.filter(pl.col("question_anonymous"))
    assert anon.height > 0 and (anon["student_name"] == "").all() and (anon["student_id"] == "").all()


def test_questions_group_filter(warehouse: Warehouse, stift_frames) -> None:
    req = month(0, 2026, 10)
    source = in_period(stift_frames["questions"], req, "created_at")
    group_id = source["group_id"].mode().sort()[0]
    name = stift_frames["groups"].filter(pl.col("id") == group_id)["name"].item()
    _, out = run(warehouse, questions, month(0, 2026, 10, group_ids=[group_id]))
    assert out.height == source.filter(pl.col("group_id") == group_id).height > 0
    assert set(out["group"]) == {name}


def test_bookings_rows_match_the_source(warehouse: Warehouse, stift_frames) -> None:
    req = month(0, 2026, 10)
    _, out = run(warehouse, bookings, req)
    source = in_period(stift_frames["bookings"], req, "scheduled_for")
    assert out.height == source.height > 0
    assert set(out["id"]) == set(source["id"])
    assert out["scheduled_for"].str.contains(r"^\d\d/10/2026 \d\d:\d\d$").all()  # local month, local format
    assert set(out["status"]) <= set(bookings.STATUS_LABELS.values())
    school = int(source["school_id"].mode().sort()[0])
    _, filtered = run(warehouse, bookings, month(0, 2026, 10, school_ids=[str(school)]))
    assert filtered.height == source.filter(pl.col("school_id") == school).height > 0


def test_current_month_has_pending_bookings(warehouse: Warehouse) -> None:
    _, out = run(warehouse, bookings, month(0, NOW.year, NOW.month))
    assert "Pendente" in set(out["status"]) and "Presente" in set(out["status"])


def test_workload_is_a_per_institution_snapshot(warehouse: Warehouse, core, stift_frames) -> None:
    id_, name, sub, tz = INSTITUTIONS[0]
    req = ReportRequest(Institution(id_, name, sub, tz), None, None, NOW.replace(tzinfo=UTC))
    assert set(req.query_params()) == {"institution_id"}
    _, out = run(warehouse, bookings_workload, req)
    users = core["users"].filter(pl.col("institution_id") == id_)
    living = users.filter(pl.col("deleted_at").is_null())
    slots = (
        stift_frames["teacher_schedules"]
        .filter(pl.col("institution_id") == id_)
        .join(living.select(teacher_id="id", teacher_email="email"), on="teacher_id")
    )
    pairs = slots.join(
        stift_frames["disciplines"].select(discipline_id="id", discipline_name="name"), on="discipline_id"
    )
    bounds = pairs.group_by("teacher_email", "discipline_name").agg(
        raw=(pl.col("end_minute") - pl.col("start_minute")).sum(),
        longest=(pl.col("end_minute") - pl.col("start_minute")).max(),
    )
    checked = out.join(bounds, on=["teacher_email", "discipline_name"], how="left")
    assert out.height == bounds.height > 0
    assert (checked["weekly_minutes"] <= checked["raw"]).all() and (
        checked["weekly_minutes"] >= checked["longest"]
    ).all()
    assert set(out["teacher_email"]) <= set(living["email"])


@pytest.mark.parametrize("inst_index", [0, 1])
def test_groups_usage_totals_equal_the_sum_of_their_parts(
    warehouse: Warehouse, core, stift_frames, inst_index: int
) -> None:
    req = month(inst_index, 2026, 10, show_teachers=True, show_disciplines=True)
    frames = warehouse.query_many(groups_usage.SPEC.queries, req.query_params())
    summary = groups_usage.build_summary(frames, req)
    source = in_period(stift_frames["questions"], req, "created_at")
    assert summary["total_questions"] == source.height > 0
    assert sum(summary["questions_count_by_discipline"].values()) == summary["total_questions"]
    assert sum(d["total_questions"] for d in summary["disciplines"]) == summary["total_questions"]
    named = source.filter(~pl.col("anonymous")).height
    assert sum(s["questions_count"] for s in summary["students"]) == named
    answered = source.filter(pl.col("answered_at").is_not_null() & pl.col("teacher_id").is_not_null()).height
    assert sum(t["answered_questions_count"] for t in summary["teachers"]) == answered
    assert len(summary["answer_ratings"]) == source["answer_rating"].drop_nulls().len()
    inst_id = INSTITUTIONS[inst_index][0]
    emails = set(core["users"].filter(pl.col("institution_id") == inst_id)["email"])
    assert {s["email"] for s in summary["students"]} <= emails
    assert {t["email"] for t in summary["teachers"]} <= emails
    assert {n["email"] for n in summary["nps_answers"]} <= emails
    assert 0 <= summary["active_users_percentage"] <= 1
    flat = groups_usage.SPEC.build(frames, req)
    assert flat.height == len(summary["students"])
    assert flat["questions_count"].sum() == named


def test_groups_usage_for_one_group(warehouse: Warehouse, stift_frames) -> None:
    req = month(0, 2026, 10)
    source = in_period(stift_frames["questions"], req, "created_at")
    group_id = source["group_id"].mode().sort()[0]
    name = stift_frames["groups"].filter(pl.col("id") == group_id)["name"].item()
    one = month(0, 2026, 10, group_ids=[group_id])
    summary = groups_usage.build_summary(warehouse.query_many(groups_usage.SPEC.queries, one.query_params()), one)
    assert summary["total_questions"] == source.filter(pl.col("group_id") == group_id).height
    assert all(name in s["groups"] for s in summary["students"])


def test_no_other_institutions_rows(warehouse: Warehouse, stift_frames) -> None:
    req = month(1, 2026, 10)
    other = set(stift_frames["questions"].filter(pl.col("institution_id") != 2)["id"])
    _, out = run(warehouse, questions, req)
    assert not set(out["question_id"]) & other
    other_b = set(stift_frames["bookings"].filter(pl.col("institution_id") != 2)["id"])
    _, out_b = run(warehouse, bookings, req)
    assert not set(out_b["id"]) & other_b


@pytest.mark.services
def test_duckdb_and_postgres_give_the_same_reports(stift_warehouse: str, stift_pg_warehouse: str) -> None:
    duck, pg = Warehouse(stift_warehouse), Warehouse(stift_pg_warehouse)
    req = month(0, 2026, 10, show_teachers=True, show_disciplines=True)
    for module in (questions, bookings, groups_usage):
        a = module.SPEC.build(duck.query_many(module.SPEC.queries, req.query_params()), req)
        b = module.SPEC.build(pg.query_many(module.SPEC.queries, req.query_params()), req)
        assert a.equals(b), module.SPEC.name
    snap = ReportRequest(req.institution, None, None, req.as_of)
    wa = bookings_workload.SPEC.build(duck.query_many(bookings_workload.SPEC.queries, snap.query_params()), snap)
    wb = bookings_workload.SPEC.build(pg.query_many(bookings_workload.SPEC.queries, snap.query_params()), snap)
    assert wa.equals(wb)
    sa = groups_usage.build_summary(duck.query_many(groups_usage.SPEC.queries, req.query_params()), req)
    sb = groups_usage.build_summary(pg.query_many(groups_usage.SPEC.queries, req.query_params()), req)
    assert sa == sb
    empty = month(0, 2019, 1, show_teachers=True, show_disciplines=True)  # no rows: all-Null PostgreSQL frames
    for module in (questions, bookings):
        assert module.SPEC.build(pg.query_many(module.SPEC.queries, empty.query_params()), empty).height == 0
    quiet = groups_usage.build_summary(pg.query_many(groups_usage.SPEC.queries, empty.query_params()), empty)
    assert quiet["total_questions"] == 0 and quiet["nps_answers"] == [] and quiet["disciplines"] == []
    assert quiet == groups_usage.build_summary(duck.query_many(groups_usage.SPEC.queries, empty.query_params()), empty)


@pytest.mark.parametrize("module", [questions, bookings, bookings_workload, groups_usage])
def test_csv_files_carry_the_portuguese_headers(stift_warehouse: str, module: Any, tmp_path) -> None:
    from assets.writers import write_csv

    req = (
        month(0, 2026, 10)
        if module.SPEC.monthly
        else ReportRequest(month(0, 2026, 10).institution, None, None, NOW.replace(tzinfo=UTC))
    )
    _, out = run(Warehouse(stift_warehouse), module, req)
    path = tmp_path / f"{module.SPEC.slug}.csv"
    result = write_csv(out, module.SPEC.columns, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].split(",") == module.SPEC.csv_headers
    assert result.rows == out.height == len(lines) - 1 > 0
