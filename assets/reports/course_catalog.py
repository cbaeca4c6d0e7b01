"""Course catalog report (seed 001): every course of the institution with its activity.

One row per course (all statuses) with views, enrollments and completions in the
period. Everything the builder needs arrives in the extracted frames and in
``request.filters`` / ``request.options``; the rules are in ``DESCRIPTION``
(shown to operators in the Dagster UI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from assets.batching import BATCH_COLUMN, batch_of_one, conform_keyed
from assets.spec import KIND_DTYPES, Column, ReportRequest, ReportSpec, collation_key, to_local

DESCRIPTION = """\
**Course catalog** (seed 001, `GET /institution/reports/catalog?start_date=&end_date=[&school_ids=]`).

**One row** = one course of the institution, whatever its status (drafts included),
sorted by course ID. With `school_ids` (non-empty) only the courses linked to *any* of
those schools are listed.

**Period**: `[request.start, request.end)` in the *institution's* timezone. The API
turns the seed's inclusive `end_date` into the exclusive midnight that starts the
next day, so `start_date=2026-01-01&end_date=2026-01-31` counts every event from
01/01 00:00 to 31/01 23:59:59.999 local. The monthly asset is the whole month
without a school filter. Warehouse timestamps are naive UTC.

**Columns**
- *URL de Visualização (Aluno)* / *URL de Edição (Admin)*: the configured templates
  (`student_url_template`, `admin_url_template`; placeholders `{subdomain}`,
  `{course_id}`, `{institution_id}`) filled with the institution's subdomain.
- *Status*: `Publicado` for status 1, `Rascunho` otherwise (0 = draft).
- *Visualizações*: course views in the period. *Matrículas*: enrollments whose
  `enrolled_at` is in the period. *Conclusões*: enrollments whose `completed_at` is
  in the period (the enrollment itself may be older).
- *Data de Publicação*: `published_at` as a local date; empty for drafts (even if a
  draft still carries an old `published_at`).
- *Escola*: names of **all** the course's schools (also the ones outside the
  `school_ids` filter), each school once, sorted accent- and case-insensitively
  (`Álgebra` sorts with `A`), ties by the raw name, joined by `, `; an empty cell
  when the course is in no school.
"""

COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", "int"),
    Column("title", "Título", width=40),
    Column("student_url", "URL de Visualização (Aluno)", width=48),
    Column("status", "Status", width=11),
    Column("admin_url", "URL de Edição (Admin)", width=48),
    Column("views", "Visualizações", "int"),
    Column("enrollments", "Matrículas", "int"),
    Column("completions", "Conclusões", "int"),
    Column("published_on", "Data de Publicação", "date"),
    Column("schools", "Escola", width=36),
)

# Dimension tables: the institution's rows. Event tables: institution AND period.
# Enrollments are needed when enrolled_at OR completed_at is in the period; the
# two UNION ALL branches are disjoint (the second excludes rows of the first) and
# each one is a plain range on its own (institution_id, time) index.
QUERIES: dict[str, str] = {
    "courses": """
        SELECT id, institution_id, title, status, published_at
        FROM courses
        WHERE institution_id = :institution_id
    """,
    "schools": """
        SELECT id, institution_id, name
        FROM schools
        WHERE institution_id = :institution_id
    """,
    "course_schools": """
        SELECT institution_id, course_id, school_id
        FROM course_schools
        WHERE institution_id = :institution_id
    """,
    "course_views": """
        SELECT institution_id, course_id, viewed_at
        FROM course_views
        WHERE institution_id = :institution_id
          AND viewed_at >= :start_utc AND viewed_at < :end_utc
    """,
    "enrollments": """
        SELECT institution_id, course_id, enrolled_at, completed_at
        FROM enrollments
        WHERE institution_id = :institution_id
          AND enrolled_at >= :start_utc AND enrolled_at < :end_utc
        UNION ALL
        SELECT institution_id, course_id, enrolled_at, completed_at
        FROM enrollments
        WHERE institution_id = :institution_id
          AND completed_at >= :start_utc AND completed_at < :end_utc
          AND NOT (enrolled_at >= :start_utc AND enrolled_at < :end_utc)
    """,
}

URL_PLACEHOLDERS = ("subdomain", "course_id", "institution_id")


def _input(frames: Mapping[str, pl.DataFrame], name: str) -> pl.DataFrame:
    """The named frame as schema.sql declares it, restricted to each row's own institution (defence in depth)."""
    return conform_keyed(name, frames, required=True).filter(pl.col("institution_id") == pl.col(BATCH_COLUMN))


def _in_period(col: str, request: ReportRequest) -> pl.Expr:
    params = request.query_params()
    start: datetime = params["start_utc"]
    end: datetime = params["end_utc"]
    return (pl.col(col) >= start) & (pl.col(col) < end)


def _template(options: Mapping[str, Any], key: str) -> str:
    """The URL template from options, checked once so a typo fails before any row."""
    template = options.get(key)
    if not isinstance(template, str) or not template:
        raise ValueError(
            f"course_catalog: request.options[{key!r}] is required (a format string with "
            f"{{subdomain}}, {{course_id}}, {{institution_id}}; see Settings.{key})"
        )
    try:
        template.format(subdomain="x", course_id=1, institution_id=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"course_catalog: invalid {key} {template!r}: {exc!r}; allowed placeholders: {', '.join(URL_PLACEHOLDERS)}"
        ) from exc
    return template


def _school_filter(filters: Mapping[str, Any]) -> list[int] | None:
    raw = filters.get("school_ids")
    if raw is None:
        return None
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (Sequence, set, frozenset)):
        raise ValueError(f"course_catalog: filters['school_ids'] must be a list of integers, got {raw!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        raise ValueError(f"course_catalog: filters['school_ids'] must hold integers, got {raw!r}")
    return list(raw) or None


def _school_names(links: pl.DataFrame, schools: pl.DataFrame) -> pl.DataFrame:
    """(institution, course_id) -> "A, B, C" over all the course's schools (each school once)."""
    k = BATCH_COLUMN
    named = (
        links.select(k, "course_id", "school_id")
        .unique()
        .join(schools.select(k, pl.col("id").alias("school_id"), "name"), on=[k, "school_id"], how="inner")
        .with_columns(collation_key(pl.col("name")).alias("key"))
        .sort([k, "course_id", "key", "name", "school_id"])
    )
    return named.group_by(k, "course_id", maintain_order=True).agg(pl.col("name").str.join(", ").alias("schools"))


def build_batch(frames: Mapping[str, pl.DataFrame], requests: Sequence[ReportRequest]) -> pl.DataFrame:
    """Frames from ``QUERIES`` (keyed by institution, ``assets.batching``) -> the report frame of every
    institution of the batch (``BATCH_COLUMN``, then the ``COLUMNS`` keys, in order)."""
    request = requests[0]
    if request.start is None or request.end is None:
        raise ValueError("course_catalog needs a period (request.start and request.end)")
    student_template = _template(request.options, "student_url_template")
    admin_template = _template(request.options, "admin_url_template")
    school_ids = _school_filter(request.filters)
    tz = request.institution.timezone
    k = BATCH_COLUMN

    courses = _input(frames, "courses").unique([k, "id"])
    schools = _input(frames, "schools").unique([k, "id"])
    # A link counts only when its school is one of the institution's schools.
    links = _input(frames, "course_schools").join(
        schools.select(k, pl.col("id").alias("school_id")), on=[k, "school_id"], how="semi"
    )
    views = _input(frames, "course_views").filter(_in_period("viewed_at", request))
    enrollments = _input(frames, "enrollments")

    if school_ids is not None:
        selected = links.filter(pl.col("school_id").is_in(school_ids)).select(k, pl.col("course_id").alias("id"))
        courses = courses.join(selected.unique(), on=[k, "id"], how="semi")

    view_counts = views.group_by(k, "course_id").agg(pl.len().cast(pl.Int64).alias("views"))
    enrollment_counts = enrollments.group_by(k, "course_id").agg(
        _in_period("enrolled_at", request).sum().cast(pl.Int64).alias("enrollments"),
        _in_period("completed_at", request).fill_null(False).sum().cast(pl.Int64).alias("completions"),
    )

    rows = (
        courses.join(view_counts.rename({"course_id": "id"}), on=[k, "id"], how="left")
        .join(enrollment_counts.rename({"course_id": "id"}), on=[k, "id"], how="left")
        .join(_school_names(links, schools).rename({"course_id": "id"}), on=[k, "id"], how="left")
        .sort(k, "id")
    )
    subdomains = {r.institution.id: r.institution.subdomain for r in requests}
    keys = list(zip(rows[k].to_list(), rows["id"].to_list(), strict=True))

    def urls(name: str, template: str) -> pl.Series:
        values = [template.format(course_id=i, subdomain=subdomains[inst], institution_id=inst) for inst, i in keys]
        return pl.Series(name, values, dtype=pl.String())

    published = pl.col("status") == 1
    result = rows.select(
        k,
        "id",
        "title",
        urls("student_url", student_template),
        pl.when(published).then(pl.lit("Publicado")).otherwise(pl.lit("Rascunho")).alias("status"),
        urls("admin_url", admin_template),
        pl.col("views").fill_null(0),
        pl.col("enrollments").fill_null(0),
        pl.col("completions").fill_null(0),
        pl.when(published).then(to_local(pl.col("published_at"), tz).dt.date()).alias("published_on"),
        "schools",
    )
    return result.select(pl.col(k), *(pl.col(c.key).cast(KIND_DTYPES[c.kind]) for c in COLUMNS))


build = batch_of_one(build_batch)


SPEC = ReportSpec(
    name="course_catalog",
    slug="catalog",
    title="Catálogo de Cursos",
    description=DESCRIPTION,
    columns=COLUMNS,
    queries=QUERIES,
    build=build,
    build_batch=build_batch,
    monthly=True,
    filter_names=("school_ids",),
    default_format="xlsx",
)
