"""The synthetic warehouse has the data shapes the reports must cope with (SPEC §3)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orchestration.warehouse.generate import (
    CORE_TABLES,
    STIFT_TABLES,
    generate,
    local_month_bounds,
    with_big_institution,
)
from orchestration.warehouse.scales import SCALES
from orchestration.warehouse.tables import sort_keys, table_schemas

Frames = dict[str, pl.DataFrame]
EVENT_TIME = {
    "story_views": "viewed_at",
    "storyboard_reactions": "reacted_at",
    "course_views": "viewed_at",
    "enrollments": "enrolled_at",
}


def local_month(frame: pl.DataFrame, institutions: pl.DataFrame, col: str) -> pl.DataFrame:
    """Adds `month` = 'YYYY-MM' of `col` in the institution's own timezone."""
    tz = institutions.select(pl.col("id").alias("institution_id"), "timezone")
    parts = []
    for (zone,), part in frame.join(tz, on="institution_id").group_by("timezone"):
        parts.append(
            part.with_columns(
                pl.col(col)
                .dt.replace_time_zone("UTC")
                .dt.convert_time_zone(str(zone))
                .dt.strftime("%Y-%m")
                .alias("month")
            ).drop("timezone")
        )
    return pl.concat(parts)


def expected_months(zone: str, now: datetime) -> list[str]:
    local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    index = local.year * 12 + local.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - 12, index + 1)]


def cpf_valid(cpf: str) -> bool:
    d = [int(c) for c in re.sub(r"\D", "", cpf)]
    v1 = sum(x * w for x, w in zip(d[:9], range(10, 1, -1), strict=True)) * 10 % 11 % 10
    v2 = sum(x * w for x, w in zip(d[:10], range(11, 1, -1), strict=True)) * 10 % 11 % 10
    return len(set(d)) > 1 and d[9:] == [v1, v2]


def cnpj_valid(cnpj: str) -> bool:
    d = [int(c) for c in re.sub(r"\D", "", cnpj)]
    w = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]

    def dv(digits: list[int], weights: list[int]) -> int:
        r = sum(x * y for x, y in zip(digits, weights, strict=True)) % 11
        return 0 if r < 2 else 11 - r

    return d[12] == dv(d[:12], w[1:]) and d[13] == dv(d[:13], w)


# ---------------------------------------------------------------- determinism and shape
def test_same_seed_same_frames_different_seed_differs(tiny: Frames, now: datetime) -> None:
    again = generate("tiny", 42, now)
    assert list(again) == list(tiny)
    for table in tiny:
        assert_frame_equal(again[table], tiny[table])
    other = generate("tiny", 7, now)
    for table in ("users", "story_views", "library_contents", "enrollments"):
        assert not other[table].equals(tiny[table]), table


def test_later_now_in_same_month_only_adds_events(tiny: Frames, now: datetime) -> None:
    later_now = now + timedelta(days=3)
    later = generate("tiny", 42, later_now)
    for table in CORE_TABLES:
        if table in EVENT_TIME:
            continue
        assert_frame_equal(later[table], tiny[table])
    for table, col in EVENT_TIME.items():
        cut = later[table].filter(pl.col(col) <= now)
        if table == "enrollments":  # completions after `now` had not happened yet
            cut = cut.with_columns(
                pl.when(pl.col("completed_at") <= now).then(pl.col("completed_at")).alias("completed_at")
            )
        assert_frame_equal(cut, tiny[table])
        assert later[table][col].max() <= later_now
    assert later["story_views"].height > tiny["story_views"].height


def test_every_table_has_ddl_columns_and_rows(tiny: Frames) -> None:
    assert list(tiny) == list(table_schemas())
    for table, frame in tiny.items():
        assert frame.schema == table_schemas()[table], table
        assert frame.equals(frame.sort(sort_keys(table), maintain_order=True)), f"{table} not in load order"
    for table in CORE_TABLES:
        assert tiny[table].height > 0, table
    try:
        import orchestration.warehouse.generate_stift  # noqa: F401
    except ModuleNotFoundError:
        pytest.skip("generate_stift not written yet: Stift tables are empty placeholders")
    for table in STIFT_TABLES:
        assert tiny[table].height > 0, table


def test_ids_unique_and_references_stay_inside_the_institution(tiny: Frames) -> None:
    for table in ("institutions", "users", "storyboards", "stories", "schools", "courses", "library_contents"):
        assert tiny[table]["id"].is_unique().all(), table
    assert tiny["institutions"]["id"].min() == 1
    refs = [
        ("story_views", "user_id", "users"),
        ("story_views", "storyboard_id", "storyboards"),
        ("story_views", "story_id", "stories"),
        ("storyboard_reactions", "user_id", "users"),
        ("storyboard_reactions", "storyboard_id", "storyboards"),
        ("stories", "storyboard_id", "storyboards"),
        ("course_schools", "course_id", "courses"),
        ("course_schools", "school_id", "schools"),
        ("course_views", "course_id", "courses"),
        ("course_views", "user_id", "users"),
        ("enrollments", "course_id", "courses"),
        ("enrollments", "user_id", "users"),
        ("library_contents", "user_id", "users"),
        ("library_content_links", "content_id", "library_contents"),
    ]
    for child, col, parent in refs:
        keys = tiny[parent].select(pl.col("id").alias(col), pl.col("institution_id"))
        orphans = tiny[child].join(keys, on=[col, "institution_id"], how="anti")
        assert orphans.height == 0, f"{child}.{col} -> {parent}"
    # a view's story belongs to the viewed storyboard
    stories = tiny["stories"].select(pl.col("id").alias("story_id"), pl.col("storyboard_id").alias("owner"))
    views = tiny["story_views"].join(stories, on="story_id")
    assert (views["owner"] == views["storyboard_id"]).all()


# ---------------------------------------------------------------- time
def test_thirteen_local_months_of_activity_per_institution(tiny: Frames, now: datetime) -> None:
    inst = tiny["institutions"]
    for table, col in (
        ("story_views", "viewed_at"),
        ("course_views", "viewed_at"),
        ("storyboard_reactions", "reacted_at"),
    ):
        months = local_month(tiny[table], inst, col)
        for iid, zone in inst.select("id", "timezone").iter_rows():
            seen = sorted(months.filter(pl.col("institution_id") == iid)["month"].unique())
            expected = expected_months(zone, now)
            assert set(expected) <= set(seen), (table, iid, zone, seen)
            assert max(seen) == expected[-1], (table, iid)  # nothing after the current local month
    for table, col in EVENT_TIME.items():
        assert tiny[table][col].max() <= now, table


def test_demo_institution_and_timezones(tiny: Frames, now: datetime) -> None:
    inst = tiny["institutions"]
    assert inst.row(0, named=True) == {
        "id": 1,
        "name": "Instituição Demo",
        "subdomain": "demo",
        "timezone": "America/Sao_Paulo",
    }
    assert inst["subdomain"].is_unique().all()

    def has_dst(zone: str) -> bool:
        tz = ZoneInfo(zone)
        return datetime(2026, 1, 15, tzinfo=tz).utcoffset() != datetime(2026, 7, 15, tzinfo=tz).utcoffset()

    zones = inst["timezone"].to_list()
    assert any(has_dst(z) for z in zones)
    assert any(not has_dst(z) and z != "America/Sao_Paulo" for z in zones)
    offsets = [datetime(2026, 1, 15, tzinfo=ZoneInfo(z)).utcoffset() or timedelta() for z in zones]
    assert min(offsets) < timedelta() < max(offsets)  # both sides of UTC: month edges move both ways


# ---------------------------------------------------------------- users
def test_users_identity_fields(tiny: Frames) -> None:
    users = tiny["users"]
    assert users["name"].str.contains("[ãõçáéíóúâêôÂÁÉÍÓÚÇ]").sum() > users.height * 0.3
    assert (users["name"] == users["first_name"] + " " + users["last_name"]).all()
    assert users["email"].is_unique().all() and users["email"].str.contains(r"^[a-z0-9.]+@[a-z0-9.-]+$").all()
    assert users["uuid"].is_unique().all()
    assert users["uuid"].str.contains(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$").all()
    cpf = users["cpf"].drop_nulls()
    assert cpf.str.contains(r"^\d{3}\.\d{3}\.\d{3}-\d{2}$").all() and all(cpf_valid(c) for c in cpf)
    assert users["cpf"].null_count() > 0 and users["cpf"].null_count() < users.height * 0.3
    cnpj = users["cnpj"].drop_nulls()
    assert 0 < cnpj.len() < users.height * 0.2
    assert cnpj.str.contains(r"^\d{2}\.\d{3}\.\d{3}/0001-\d{2}$").all() and all(cnpj_valid(c) for c in cnpj)
    assert users.filter(pl.col("cpf").is_null() & pl.col("cnpj").is_null()).height > 0
    privileges = users["privilege_id"].value_counts().sort("privilege_id")
    assert privileges["privilege_id"].to_list() == [1, 2, 3, 4]
    assert privileges.filter(pl.col("privilege_id") == 4)["count"].item() > users.height * 0.6
    assert users["external_id"].null_count() > 0 and users["external_id"].drop_nulls().is_unique().all()
    assert (users["blocked_at"].drop_nulls() > users.filter(pl.col("blocked_at").is_not_null())["created_at"]).all()


def _activity(tiny: Frames) -> pl.DataFrame:
    return pl.concat(
        [
            tiny["story_views"].select("user_id", pl.col("viewed_at").alias("at")),
            tiny["storyboard_reactions"].select("user_id", pl.col("reacted_at").alias("at")),
            tiny["course_views"].select("user_id", pl.col("viewed_at").alias("at")),
            tiny["enrollments"].select("user_id", pl.col("enrolled_at").alias("at")),
        ]
    )


def test_deleted_blocked_and_silent_users(tiny: Frames) -> None:
    users = tiny["users"]
    activity = _activity(tiny).join(
        users.select(pl.col("id").alias("user_id"), "created_at", "deleted_at"), on="user_id"
    )
    assert (activity["at"] >= activity["created_at"]).all()
    assert activity.filter(pl.col("at") >= pl.col("deleted_at")).height == 0
    deleted_active = activity.filter(pl.col("deleted_at").is_not_null())["user_id"].unique()
    assert deleted_active.len() >= tiny["institutions"].height  # at least one per institution
    # ... including users deleted in the middle of a month in which they were active
    same_month = activity.filter(
        pl.col("deleted_at").is_not_null()
        & (pl.col("at").dt.truncate("1mo") == pl.col("deleted_at").dt.truncate("1mo"))
    )
    assert same_month.height > 0
    silent = users.join(activity.select(pl.col("user_id").alias("id")).unique(), on="id", how="anti")
    assert silent.height >= tiny["institutions"].height
    assert users["blocked_at"].null_count() < users.height


# ---------------------------------------------------------------- storyboards
def test_storyboards_stories_views_and_reactions(tiny: Frames) -> None:
    sb, stories, views, reactions = (
        tiny["storyboards"],
        tiny["stories"],
        tiny["story_views"],
        tiny["storyboard_reactions"],
    )
    per_sb = stories.group_by("storyboard_id").agg(pl.len().alias("n"), pl.col("position").sort().alias("pos"))
    assert per_sb.height == sb.height  # every storyboard has stories
    assert all(p == list(range(1, n + 1)) for n, p in per_sb.select("n", "pos").iter_rows())
    assert (per_sb["n"] == 1).sum() >= tiny["institutions"].height
    assert per_sb["n"].max() > 3
    deleted = sb.filter(pl.col("deleted_at").is_not_null())
    assert deleted.height > 0
    seen = views.join(sb.select(pl.col("id").alias("storyboard_id"), "deleted_at", "created_at"), on="storyboard_id")
    assert (seen["viewed_at"] >= seen["created_at"]).all()
    assert seen.filter(pl.col("viewed_at") >= pl.col("deleted_at")).height == 0
    assert seen.filter(pl.col("deleted_at").is_not_null()).height > 0  # deleted after having views
    # re-views: the same user viewing the same story more than once
    assert views.group_by("user_id", "story_id").len().filter(pl.col("len") > 1).height > 0
    assert set(reactions["kind"].unique()) == {"like", "dislike"}


def test_completion_mix_and_reaction_view_overlap(tiny: Frames) -> None:
    inst = tiny["institutions"]
    views = local_month(tiny["story_views"], inst, "viewed_at")
    reactions = local_month(tiny["storyboard_reactions"], inst, "reacted_at")
    n_stories = tiny["stories"].group_by("storyboard_id").len("total")
    progress = (
        views.group_by("user_id", "storyboard_id", "month")
        .agg(pl.col("story_id").n_unique().alias("viewed"))
        .join(n_stories, on="storyboard_id")
    )
    assert progress.filter(pl.col("viewed") == pl.col("total")).height > 0
    assert progress.filter(pl.col("viewed") < pl.col("total")).height > 0
    key = ["user_id", "storyboard_id", "month"]
    view_pairs, react_pairs = views.select(key).unique(), reactions.select(key).unique()
    assert react_pairs.join(view_pairs, on=key, how="anti").height > 0  # reactions without views
    assert view_pairs.join(react_pairs, on=key, how="anti").height > 0  # views without reactions
    assert view_pairs.join(react_pairs, on=key).height > 0


# ---------------------------------------------------------------- courses
def test_courses_schools_views_enrollments(tiny: Frames) -> None:
    courses, links = tiny["courses"], tiny["course_schools"]
    drafts = courses.filter(pl.col("status") == 0)
    published = courses.filter(pl.col("status") == 1)
    assert drafts.height > 0 and drafts["published_at"].null_count() == drafts.height
    assert published.height > 0 and published["published_at"].null_count() == 0
    assert (published["published_at"] >= published["created_at"]).all()
    assert set(courses["status"].unique()) == {0, 1}
    counts = courses.select(pl.col("id").alias("course_id")).join(
        links.group_by("course_id").len(), on="course_id", how="left"
    )
    n = counts["len"].fill_null(0)
    assert (n == 0).any() and (n == 1).any() and (n >= 2).any()
    assert links.select("course_id", "school_id").is_unique().all()
    views = tiny["course_views"].join(
        courses.select(pl.col("id").alias("course_id"), "status", "published_at"), on="course_id"
    )
    assert (views["status"] == 1).all() and (views["viewed_at"] >= views["published_at"]).all()
    enr = tiny["enrollments"]
    assert enr.select("course_id", "user_id").is_unique().all()
    done = enr.filter(pl.col("completed_at").is_not_null())
    assert 0 < done.height < enr.height
    assert (done["completed_at"] > done["enrolled_at"]).all()


# ---------------------------------------------------------------- library
def test_library_contents_cover_seed_003(tiny: Frames) -> None:
    lib, links = tiny["library_contents"], tiny["library_content_links"]
    pairs = set(lib.select("type", "monolith_type").unique().iter_rows())
    assert pairs == {("text", 1), ("video_online", 2), ("html5", 3)}
    assert set(lib["status"].unique()) == {0, 1}
    videos = lib.filter(pl.col("type") == "video_online")
    others = lib.filter(pl.col("type") != "video_online")
    assert videos["video_url"].null_count() == 0 and others["video_url"].null_count() == others.height
    assert videos["video_url"].str.contains(r"^https://(www\.youtube\.com/watch\?v=|vimeo\.com/)").all()
    assert (videos["duration"] > 0).all() and set(videos["video_orientation"].unique()) <= {"landscape", "portrait"}
    assert lib.filter(pl.col("type") == "text")["body"].null_count() == 0
    assert lib.filter(pl.col("type") == "html5")["file_url"].null_count() == 0
    for col in (
        "description",
        "thumbnail_url",
        "catalog_cover_rectangular_url",
        "difficulty",
        "tags",
        "source",
        "authors",
    ):
        assert 0 < lib[col].null_count() < lib.height, col
    for col in (
        "show_in_student_catalog",
        "show_in_visitor_catalog",
        "block_catalog_logged_out",
        "show_course_details",
    ):
        assert lib[col].any() and not lib[col].all(), col
    assert (lib["updated_at"] >= lib["created_at"]).all()
    assert lib["deleted_at"].null_count() < lib.height
    assert lib["title"].str.contains("[ãçéíóúâêô]").sum() > lib.height * 0.3  # accent-insensitive search matters
    assert set(links["link_type"].unique()) == {"cycle", "cycle_stage", "discipline", "school"}
    assert links.select("content_id", "link_type", "ref_id").is_unique().all()
    school_links = links.filter(pl.col("link_type") == "school")
    schools = tiny["schools"].select(pl.col("id").alias("ref_id"), "institution_id")
    assert school_links.join(schools, on=["ref_id", "institution_id"], how="anti").height == 0
    assert lib.join(links.select(pl.col("content_id").alias("id")).unique(), on="id", how="anti").height > 0


# ---------------------------------------------------------------- the big institution
def test_big_institution_campaign_month_at_reduced_size(now: datetime) -> None:
    scale = with_big_institution(SCALES["tiny"], users=400, storyboards=10, library_contents=500)
    frames = generate(scale, 42, now)
    inst = frames["institutions"]
    big = inst.row(-1, named=True)
    assert big["id"] == scale.institutions and big["id"] != 1
    months = expected_months(big["timezone"], now)
    pairs = (
        pl.concat(
            [
                local_month(frames["story_views"], inst, "viewed_at").select(
                    "institution_id", "user_id", "storyboard_id", "month"
                ),
                local_month(frames["storyboard_reactions"], inst, "reacted_at").select(
                    "institution_id", "user_id", "storyboard_id", "month"
                ),
            ]
        )
        .filter(pl.col("institution_id") == big["id"])
        .unique()
        .group_by("month")
        .len()
    )
    by_month = dict(pairs.iter_rows())
    last_full = by_month[months[-2]]
    assert last_full > 0.5 * 400 * 10  # most (user, storyboard) pairs are touched in the campaign
    assert last_full > 3 * max(by_month[m] for m in months[:-2])
    assert frames["users"].filter(pl.col("institution_id") == big["id"]).height == 400
    assert frames["library_contents"].filter(pl.col("institution_id") == big["id"]).height == 500
    # the other institutions are unaffected by the big one
    tiny = generate("tiny", 42, now)
    assert_frame_equal(
        frames["users"].filter(pl.col("institution_id") < big["id"]),
        tiny["users"].filter(pl.col("institution_id") < big["id"]),
    )


def test_unknown_scale_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        generate("huge")


@pytest.mark.parametrize(
    "zone", ["America/Sao_Paulo", "America/New_York", "Europe/Lisbon", "Asia/Tokyo", "America/Manaus"]
)
def test_local_month_bounds_are_local_midnights_across_dst(zone: str, now: datetime) -> None:
    starts, ends = local_month_bounds(zone, now)
    assert len(starts) == 13 and (starts[1:] == ends[:-1]).all()
    tz = ZoneInfo(zone)
    months = []
    for s in starts:
        local = datetime.fromtimestamp(int(s), UTC).astimezone(tz)
        assert (local.day, local.hour, local.minute) == (1, 0, 0)
        months.append(local.strftime("%Y-%m"))
    assert months == expected_months(zone, now)
    assert (
        datetime.fromtimestamp(int(starts[-1]), UTC).replace(tzinfo=None)
        <= now
        < datetime.fromtimestamp(int(ends[-1]), UTC).replace(tzinfo=None)
    )
    hours = sorted({int(e - s) % 86_400 // 3600 for s, e in zip(starts, ends, strict=True)})
    dst = datetime(2026, 1, 15, tzinfo=tz).utcoffset() != datetime(2026, 7, 15, tzinfo=tz).utcoffset()
    assert hours == ([0, 1, 23] if dst else [0])  # DST months are an hour shorter/longer


def test_aware_now_equals_naive_utc(tiny: Frames, now: datetime) -> None:
    aware = now.replace(tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    assert_frame_equal(generate("tiny", 42, aware)["story_views"], tiny["story_views"])


def test_missing_stift_module_falls_back_to_empty_tables(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setitem(sys.modules, "orchestration.warehouse.generate_stift", None)
    frames = generate("tiny", 42, now)
    for table in STIFT_TABLES:
        assert frames[table].height == 0 and frames[table].schema == table_schemas()[table]
    assert frames["users"].height > 0


# ---------------------------------------------------------------- the clock is an input
def test_generate_without_a_clock_is_today_at_midnight_so_runs_seconds_apart_agree() -> None:
    """The README's promise: deterministic for a seed. Without ``now`` the generator takes
    00:00 UTC of today (not the wall clock's seconds, which reshaped future bookings)."""
    from datetime import date

    from orchestration.warehouse.generate import resolve_now

    assert resolve_now(date(2026, 11, 23)) == datetime(2026, 11, 23)
    today = datetime.now(UTC).date()
    assert resolve_now(None) == datetime(today.year, today.month, today.day)
    first = generate("tiny", 42)
    time_between = datetime.now(UTC)
    second = generate("tiny", 42)
    if datetime.now(UTC).date() != time_between.date():  # pragma: no cover - the runs straddled midnight
        pytest.skip("the two runs straddled midnight UTC")
    for table in table_schemas():
        assert_frame_equal(first[table], second[table])
    assert first["bookings"].height > 0


def test_with_institutions_scales_the_count_and_keeps_each_institution(tiny: Frames, now: datetime) -> None:
    from orchestration.warehouse.generate import with_institutions

    many = generate(with_institutions("tiny", 20), 42, now)
    assert many["institutions"]["id"].to_list() == list(range(1, 21))
    zones = set(many["institutions"]["timezone"])
    assert {"Asia/Tokyo", "Europe/Lisbon", "America/Sao_Paulo", "America/New_York"} <= zones
    assert many["institutions"]["subdomain"].n_unique() == 20
    for table in ("users", "story_views", "courses"):  # institution k does not depend on how many follow
        assert_frame_equal(many[table].filter(pl.col("institution_id") <= 3), tiny[table])
    with pytest.raises(ValueError, match="institutions must be"):
        with_institutions("tiny", 0)


def test_chunks_make_one_consistent_warehouse_without_changing_an_institution(now: datetime) -> None:
    """Big scales are generated (and loaded) a chunk of institutions at a time, so memory does not grow
    with the scale: the core tables are the unchunked ones, the Stift-style ids continue from chunk to
    chunk, references stay inside an institution, and the chunks in order are the loaded sort order."""
    from orchestration.warehouse.generate import generate_chunks, with_institutions

    scale = with_institutions("tiny", 9)
    whole = generate(scale, 42, now)
    assert len(list(generate_chunks(scale, 42, now, chunk_institutions=9))) == 1
    chunks = list(generate_chunks(scale, 42, now, chunk_institutions=4))
    assert [c["institutions"]["id"].to_list() for c in chunks] == [[1, 2, 3, 4], [5, 6, 7, 8], [9]]
    frames = {t: pl.concat([c[t] for c in chunks]) for t in table_schemas()}
    for table in CORE_TABLES:
        assert_frame_equal(frames[table], whole[table])
    for table, frame in frames.items():
        assert frame.schema == table_schemas()[table], table
        assert_frame_equal(frame, frame.sort(sort_keys(table), maintain_order=True))
        if "id" in frame.columns:
            assert frame["id"].is_unique().all(), table
    for table in STIFT_TABLES:  # every chunk has Stift-style activity of its own
        if table not in ("teacher_disciplines",):
            assert all(c[table].height > 0 for c in chunks[:2]), table
    assert not chunks[0]["questions"]["description"].equals(chunks[1]["questions"]["description"])

    def same_institution(child: str, key: str, parent: str) -> None:
        rows = frames[child].filter(pl.col(key).is_not_null())
        joined = rows.join(
            frames[parent].select(pl.col("id").alias(key), pl.col("institution_id").alias("owner")), on=key
        )
        assert joined.height == rows.height and (joined["institution_id"] == joined["owner"]).all(), (child, key)

    same_institution("subjects", "discipline_id", "disciplines")
    same_institution("teacher_disciplines", "discipline_id", "disciplines")
    same_institution("teacher_schedules", "discipline_id", "disciplines")
    same_institution("questions", "subject_id", "subjects")
    same_institution("questions", "group_id", "groups")
    same_institution("bookings", "booking_room_id", "booking_rooms")
    same_institution("bookings", "school_id", "schools")
    same_institution("nps_answers", "user_id", "users")
