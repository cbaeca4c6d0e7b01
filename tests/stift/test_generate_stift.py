"""The Stift-style synthetic data: schema, determinism, integrity, coverage of every status."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from assets.reports import bookings, questions
from assets.spec import Institution, ReportRequest
from orchestration.warehouse.generate import STIFT_TABLES as TABLES
from orchestration.warehouse.generate_stift import generate_stift
from orchestration.warehouse.scales import SCALES
from orchestration.warehouse.tables import table_schemas
from tests.stift.conftest import INSTITUTIONS, NOW, SEED, tiny_core


def test_tables_columns_and_dtypes_match_schema_sql(stift_frames: dict[str, pl.DataFrame]) -> None:
    assert sorted(stift_frames) == sorted(TABLES)
    schemas = table_schemas()
    for name, frame in stift_frames.items():
        assert frame.schema == schemas[name], name
        assert frame.height > 0, name


def test_deterministic_for_a_seed(core, stift_frames) -> None:
    again = generate_stift(tiny_core(), SCALES["tiny"], SEED, NOW)
    for name in TABLES:
        assert again[name].equals(stift_frames[name]), name
    other = generate_stift(core, SCALES["tiny"], SEED + 1, NOW)
    assert not other["questions"].equals(stift_frames["questions"])


def test_primary_keys_are_unique(stift_frames) -> None:
    for name in (
        "groups",
        "disciplines",
        "subjects",
        "questions",
        "teacher_schedules",
        "booking_rooms",
        "bookings",
        "nps_answers",
    ):
        assert stift_frames[name]["id"].is_unique().all(), name
    assert stift_frames["questions"]["id"].str.contains(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab]").all()
    assert not stift_frames["group_members"].select("group_id", "user_id").is_duplicated().any()


def test_references_stay_inside_one_institution(core, stift_frames) -> None:
    users = core["users"].select(
        "id", u_inst="institution_id", priv="privilege_id", deleted="deleted_at", created="created_at"
    )
    groups = stift_frames["groups"].select(group_id="id", g_inst="institution_id", g_school="school_id")
    q = stift_frames["questions"].join(users, left_on="student_id", right_on="id").join(groups, on="group_id")
    assert q.height == stift_frames["questions"].height
    assert (q["institution_id"] == q["u_inst"]).all() and (q["institution_id"] == q["g_inst"]).all()
    assert (q["priv"] == 4).all()
    # a question is asked by a living user after their account existed
    assert (q["created_at"] >= q["created"]).all()
    assert q.filter(pl.col("deleted").is_not_null() & (pl.col("created_at") > pl.col("deleted"))).height == 0
    teachers = (
        stift_frames["questions"]
        .filter(pl.col("teacher_id").is_not_null())
        .join(users, left_on="teacher_id", right_on="id")
    )
    assert (teachers["priv"] == 3).all() and (teachers["institution_id"] == teachers["u_inst"]).all()
    subjects = stift_frames["subjects"].select(subject_id="id", s_disc="discipline_id")
    qs = stift_frames["questions"].filter(pl.col("subject_id").is_not_null()).join(subjects, on="subject_id")
    assert (qs["discipline_id"] == qs["s_disc"]).all()
    schools = core["schools"].select(school_id="id", s_inst="institution_id")
    b = stift_frames["bookings"].join(schools, on="school_id")
    assert b.height == stift_frames["bookings"].height and (b["institution_id"] == b["s_inst"]).all()
    grouped = b.filter(pl.col("group_id").is_not_null()).join(groups, on="group_id")
    assert (grouped["school_id"] == grouped["g_school"]).all()
    members = stift_frames["group_members"].join(users, left_on="user_id", right_on="id")
    assert (members["institution_id"] == members["u_inst"]).all()
    assert set(members.filter(pl.col("priv") == 3)["role"]) == {"teacher"}


def test_time_window_covers_twelve_months_and_the_current_one(stift_frames) -> None:
    q = stift_frames["questions"]
    months = set(q.select(pl.col("created_at").dt.strftime("%Y-%m")).to_series())
    expected = {f"{(NOW.year * 12 + NOW.month - 1 - k) // 12}-{(NOW.month - 1 - k) % 12 + 1:02d}" for k in range(13)}
    assert expected <= months
    assert q["created_at"].max() <= NOW
    b = stift_frames["bookings"]
    assert b["created_at"].max() <= NOW and (b["created_at"] <= b["scheduled_for"]).all()
    assert b["scheduled_for"].max() > NOW  # future bookings exist
    assert b.filter(pl.col("meeting_started_at") > NOW).height == 0
    assert stift_frames["nps_answers"]["answered_at"].max() <= NOW
    assert (stift_frames["nps_answers"]["answered_at"] >= stift_frames["nps_answers"]["asked_at"]).all()
    for frame in stift_frames.values():
        for dtype in frame.schema.values():
            assert not (isinstance(dtype, pl.Datetime) and dtype.time_zone), "timestamps must be naive UTC"


def _whole_range_request(inst: tuple) -> ReportRequest:
    id_, name, sub, tz = inst
    return ReportRequest(
        institution=Institution(id_, name, sub, tz),
        start=datetime(2020, 1, 1, tzinfo=ZoneInfo(tz)),
        end=datetime(2030, 1, 1, tzinfo=ZoneInfo(tz)),
        as_of=NOW.replace(tzinfo=ZoneInfo("UTC")),
    )


def _report_inputs(core, stift_frames, inst_id: int) -> dict[str, pl.DataFrame]:
    mine = {
        k: v.filter(pl.col("institution_id") == inst_id)
        for k, v in {**core, **stift_frames}.items()
        if "institution_id" in v.columns
    }
    return mine


def test_every_booking_and_question_status_is_reachable(core, stift_frames) -> None:
    booking_statuses: set[str] = set()
    question_statuses: set[str] = set()
    for inst in INSTITUTIONS:
        data = _report_inputs(core, stift_frames, inst[0])
        booking_statuses |= set(bookings.build(data, _whole_range_request(inst))["status"])
        question_statuses |= set(questions.build(data, _whole_range_request(inst))["question_status"])
    assert booking_statuses == set(bookings.STATUS_LABELS.values())
    assert question_statuses == set(questions.STATUSES)


def test_variety_anonymous_accents_and_idle_students(core, stift_frames) -> None:
    q = stift_frames["questions"]
    assert q["anonymous"].any() and not q["anonymous"].all()
    assert q["description"].str.starts_with("=").any()  # exercises formula-injection protection downstream
    assert "Matemática" in stift_frames["disciplines"]["name"].to_list()
    assert {"Álgebra", "Óptica", "Análise combinatória"} <= set(stift_frames["subjects"]["name"])
    assert stift_frames["booking_rooms"]["modal"].unique().sort().to_list() == ["Online", "Presencial"]
    students = core["users"].filter(pl.col("privilege_id") == 4)["id"]
    askers = set(q["student_id"])
    assert 0 < len(askers) < students.len()  # some students never ask anything
    assert set(stift_frames["bookings"]["cancelled_by_role"].drop_nulls()) == {"student", "teacher", "admin"}
    assert stift_frames["bookings"]["group_id"].null_count() > 0
    assert stift_frames["nps_answers"]["comment"].null_count() > 0


def test_overlapping_schedule_slots_exist_for_the_workload_union(stift_frames) -> None:
    slots = stift_frames["teacher_schedules"]
    pairs = slots.join(slots, on=["teacher_id", "discipline_id", "weekday"], suffix="_b").filter(
        (pl.col("id") < pl.col("id_b"))
        & (pl.col("start_minute") < pl.col("end_minute_b"))
        & (pl.col("start_minute_b") < pl.col("end_minute"))
    )
    assert pairs.height > 0
    assert (slots["end_minute"] > slots["start_minute"]).all()


def test_an_institution_without_schools_or_teachers_gets_no_activity_but_no_error() -> None:
    core = tiny_core(students=5, teachers=0, admins=0)
    core["schools"] = core["schools"].filter(pl.col("institution_id") == 1)
    out = generate_stift(core, SCALES["tiny"], 1, NOW + timedelta(days=3))
    assert out["groups"].filter(pl.col("institution_id") == 2).height == 0
    assert out["questions"].filter(pl.col("institution_id") == 2).height == 0
    assert (
        out["questions"].filter(pl.col("institution_id") == 1)["teacher_id"].null_count()
        == out["questions"].filter(pl.col("institution_id") == 1).height
    )
