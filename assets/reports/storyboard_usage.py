"""Storyboard usage report (seed 000): who interacted with which storyboard in a month.

One row per (user, storyboard) with at least one story view or like/dislike in
the period. Everything the builder needs arrives in the extracted frames; the
rules are spelled out in ``DESCRIPTION`` (shown to operators in the Dagster UI)
so the docs and the code cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import polars as pl

from assets.batching import BATCH_COLUMN, batch_of_one, conform_keyed
from assets.spec import KIND_DTYPES, Column, ReportRequest, ReportSpec, collation_key, to_local

DESCRIPTION = """\
**Storyboard usage** (seed 000, `GET /institution/reports/storyboard-usage?month=&year=`).

**One row** = one user × one storyboard of the institution with at least one story
view or one like/dislike inside the period.

**Period**: `[request.start, request.end)`; for the monthly asset this is
`[1st 00:00, next 1st 00:00)` in the *institution's* timezone (so 02:30 UTC on the
1st is still the previous month in America/Sao_Paulo, and DST months in e.g.
America/New_York start/end at local midnight). Warehouse timestamps are naive UTC;
the timestamps in the file are naive local wall-clock times of that timezone.

**Columns**
- *Like* / *Dislike*: number of reactions of that kind in the period.
- *Views (Enrolled)*: `viewed/total` = distinct stories of the storyboard the user
  viewed in the period / number of stories the storyboard has now (stories table).
  Re-views count once; views of a story that is not (or no longer) one of the
  storyboard's stories do not count as progress, but they are still interactions.
- *Completed*: `Sim` when `viewed == total` and `total > 0`, else `Não` (a storyboard
  with no stories can never be completed: it shows `0/0`, `Não`).
- *Updated*: last interaction (view or reaction) in the period; *Data de início*: first.
- *Data de Término*: last view in the period when *Completed* = `Sim`, else empty.
- User name/e-mail/CPF/CNPJ come from the users table; a missing CPF/CNPJ is an
  empty cell.

**Scope**: only the institution's storyboards and users. Users deleted or blocked
(even mid-period) and deleted storyboards are still listed: the interactions
happened in the period.

**Order**: storyboard title, then user name (both accent- and case-insensitive, so
`Ética` sorts with `E`; ties by the raw text), then user id, then storyboard id.
"""

COLUMNS: tuple[Column, ...] = (
    Column("storyboard", "Storyboard", width=36),
    Column("user_name", "Nome Completo (Usuário)", width=32),
    Column("email", "E-mail", width=32),
    Column("cpf", "CPF", width=16),
    Column("cnpj", "CNPJ", width=20),
    Column("likes", "Like", "int"),
    Column("dislikes", "Dislike", "int"),
    Column("completed", "Completed", width=11),
    Column("views_enrolled", "Views (Enrolled)", width=16),
    Column("updated", "Updated", "datetime"),
    Column("started", "Data de início", "datetime"),
    Column("finished", "Data de Término", "datetime"),
)

# Dimension tables: the institution's rows. Users are restricted (semi-join) to the
# ones with an interaction in the period, which keeps the extraction proportional to
# activity, not to the user base. Each branch of that semi-join is DISTINCT on its own
# (the same set): PostgreSQL then hash-aggregates each branch (the big month's 5.2M views
# → 52k users, in memory) instead of sorting all 5.6M ids for the UNION, which spilled
# 65 MB to disk with the default work_mem — 1.85 → 1.2 s of server CPU, the slowest of the
# five queries (benchmarks/big_month_pg.py); DuckDB plans both the same.
# Event tables: institution AND period, so the (institution_id, time) ordering/indexes
# prune; they do not ship institution_id back (a constant here, and a fifth of the big
# month's 5.2M-row transfer from PostgreSQL): the builder's inner joins with the
# institution's storyboards and users keep the defence in depth for them.
QUERIES: dict[str, str] = {
    "storyboards": """
        SELECT id, institution_id, title
        FROM storyboards
        WHERE institution_id = :institution_id
    """,
    "stories": """
        SELECT id, institution_id, storyboard_id
        FROM stories
        WHERE institution_id = :institution_id
    """,
    "users": """
        SELECT id, institution_id, name, email, cpf, cnpj
        FROM users
        WHERE institution_id = :institution_id
          AND id IN (
              SELECT DISTINCT user_id FROM story_views
              WHERE institution_id = :institution_id
                AND viewed_at >= :start_utc AND viewed_at < :end_utc
              UNION
              SELECT DISTINCT user_id FROM storyboard_reactions
              WHERE institution_id = :institution_id
                AND reacted_at >= :start_utc AND reacted_at < :end_utc
          )
    """,
    "story_views": """
        SELECT user_id, storyboard_id, story_id, viewed_at
        FROM story_views
        WHERE institution_id = :institution_id
          AND viewed_at >= :start_utc AND viewed_at < :end_utc
    """,
    "storyboard_reactions": """
        SELECT user_id, storyboard_id, kind, reacted_at
        FROM storyboard_reactions
        WHERE institution_id = :institution_id
          AND reacted_at >= :start_utc AND reacted_at < :end_utc
    """,
}


def _input(frames: Mapping[str, pl.DataFrame], name: str, keyed: bool) -> pl.LazyFrame:
    """The named frame as schema.sql declares it, restricted to each row's own institution when it
    carries ``institution_id`` (defence in depth; event frames do not, see ``QUERIES``); without
    ``BATCH_COLUMN`` unless ``keyed`` (one institution: its key is one value, see ``build_batch``)."""
    frame = conform_keyed(name, frames, required=True).lazy()
    if "institution_id" in frame.collect_schema().names():
        frame = frame.filter(pl.col("institution_id") == pl.col(BATCH_COLUMN))
    return frame if keyed else frame.drop(BATCH_COLUMN)


def _in_period(col: str, request: ReportRequest) -> pl.Expr:
    params = request.query_params()
    start: datetime = params["start_utc"]
    end: datetime = params["end_utc"]
    return (pl.col(col) >= start) & (pl.col(col) < end)


def _sort_rank(text: str) -> pl.Expr:
    """Dense rank of ``text`` by (collation key, raw text), computed on a dimension frame
    so the big output is sorted on integers instead of strings (ranked over the whole batch:
    the order within each institution is the same)."""
    return (collation_key(pl.col(text)) + "\x00" + pl.col(text)).rank("dense")


def build_batch(frames: Mapping[str, pl.DataFrame], requests: Sequence[ReportRequest]) -> pl.DataFrame:
    """Frames from ``QUERIES`` (keyed by institution, ``assets.batching``) -> the report frame of
    every institution of the batch (``BATCH_COLUMN``, then the ``COLUMNS`` keys, in order).

    Lazy end to end so Polars runs the view and reaction branches in parallel and
    prunes what the output does not use (the big institution's month is ~1M rows).
    One institution (the API's requests, a big institution's chunk) joins, groups and
    sorts without the institution key: it is one value there, and carrying it through
    the joins of a 5M-view month cost ≈ 0.4 s (20 %) of the build.
    """
    request = requests[0]
    if request.start is None or request.end is None:
        raise ValueError("storyboard_usage needs a period (request.start and request.end)")
    tz = request.institution.timezone
    k = BATCH_COLUMN
    keyed = len(requests) > 1
    by = [k] if keyed else []

    storyboards = (
        _input(frames, "storyboards", keyed)
        .unique([*by, "id"], keep="first")
        .select(*by, pl.col("id").alias("storyboard_id"), "title", _sort_rank("title").alias("title_rank"))
    )
    users = (
        _input(frames, "users", keyed)
        .unique([*by, "id"], keep="first")
        .select(
            *by, pl.col("id").alias("user_id"), "name", "email", "cpf", "cnpj", _sort_rank("name").alias("name_rank")
        )
    )
    stories = _input(frames, "stories", keyed)
    views = _input(frames, "story_views", keyed).filter(_in_period("viewed_at", request))
    reactions = (
        _input(frames, "storyboard_reactions", keyed)
        .filter(_in_period("reacted_at", request))
        .with_columns(pl.col("kind").str.to_lowercase().str.strip_chars())
        .filter(pl.col("kind").is_in(["like", "dislike"]))
    )

    keys = [*by, "user_id", "storyboard_id"]
    totals = stories.group_by(*by, "storyboard_id").agg(pl.col("id").n_unique().alias("total"))
    # Progress only counts stories that belong to the storyboard the view is filed under;
    # every view, valid or not, is an interaction.
    # ``own_story`` is the story's id where it is one of the storyboard's stories, else null: counting
    # it with ``drop_nulls().n_unique()`` costs the big month ≈ 0.8 CPU-s against ≈ 1.8 s for
    # ``story_id.filter(own).n_unique()`` (a filter inside a group-by aggregation materializes every
    # group's slice; benchmarks/big_month.py).
    own_story = stories.select(*by, pl.col("id").alias("story_id"), "storyboard_id", pl.col("id").alias("own_story"))
    view_stats = (
        views.join(own_story, on=[*by, "story_id", "storyboard_id"], how="left")
        .group_by(keys)
        .agg(
            pl.col("own_story").drop_nulls().n_unique().alias("viewed"),
            pl.col("viewed_at").min().alias("first_view"),
            pl.col("viewed_at").max().alias("last_view"),
        )
    )
    reaction_stats = reactions.group_by(keys).agg(
        (pl.col("kind") == "like").sum().cast(pl.Int64).alias("likes"),
        (pl.col("kind") == "dislike").sum().cast(pl.Int64).alias("dislikes"),
        pl.col("reacted_at").min().alias("first_reaction"),
        pl.col("reacted_at").max().alias("last_reaction"),
    )

    # Sorted on integers first, the texts joined after in that order: joined before, the sort
    # gathered them again into copies (≈ 100 MB for the big month, 1.2M rows) that the xlsx
    # writer then read scattered (≈ 0.4 CPU-s more writing); joined after, each row's texts are
    # views of the dimension frames' own strings (benchmarks/big_month.py). Ranks and texts come
    # from two reads of ``storyboards``/``users``: ``keep="first"`` above makes a duplicated id
    # give both the same row.
    pairs = (
        view_stats.join(reaction_stats, on=keys, how="full", coalesce=True)
        .join(totals, on=[*by, "storyboard_id"], how="left")
        .join(storyboards.select(*by, "storyboard_id", "title_rank"), on=[*by, "storyboard_id"], how="inner")
        .join(users.select(*by, "user_id", "name_rank"), on=[*by, "user_id"], how="inner")
        .sort([*by, "title_rank", "name_rank", "user_id", "storyboard_id"])
        .join(
            storyboards.select(*by, "storyboard_id", "title"),
            on=[*by, "storyboard_id"],
            how="left",
            maintain_order="left",
        )
        .join(
            users.select(*by, "user_id", "name", "email", "cpf", "cnpj"),
            on=[*by, "user_id"],
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.col("viewed").fill_null(0),
            pl.col("total").fill_null(0),
            pl.col("likes").fill_null(0),
            pl.col("dislikes").fill_null(0),
        )
    )
    completed = (pl.col("total") > 0) & (pl.col("viewed") == pl.col("total"))
    result = pairs.select(
        pl.col(k) if keyed else pl.lit(request.institution.id, pl.Int64()).alias(k),
        pl.col("title").alias("storyboard"),
        pl.col("name").alias("user_name"),
        "email",
        "cpf",
        "cnpj",
        "likes",
        "dislikes",
        pl.when(completed).then(pl.lit("Sim")).otherwise(pl.lit("Não")).alias("completed"),
        pl.format("{}/{}", "viewed", "total").alias("views_enrolled"),
        to_local(pl.max_horizontal("last_view", "last_reaction"), tz).alias("updated"),
        to_local(pl.min_horizontal("first_view", "first_reaction"), tz).alias("started"),
        to_local(pl.when(completed).then(pl.col("last_view")), tz).alias("finished"),
    )
    return result.select(pl.col(k), *(pl.col(c.key).cast(KIND_DTYPES[c.kind]) for c in COLUMNS)).collect()


build = batch_of_one(build_batch)


SPEC = ReportSpec(
    name="storyboard_usage",
    slug="storyboard-usage",
    title="Uso de Storyboards",
    description=DESCRIPTION,
    columns=COLUMNS,
    queries=QUERIES,
    build=build,
    build_batch=build_batch,
    monthly=True,
    filter_names=(),
    default_format="xlsx",
)
