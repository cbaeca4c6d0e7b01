"""Course catalog builder on hand-computed fixtures (every column of every row).

Institution 1 is in America/Sao_Paulo (UTC-3): the API's inclusive range
start_date=2026-01-01 .. end_date=2026-01-31 is [2026-01-01 03:00, 2026-02-01 03:00) UTC.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from assets.reports.course_catalog import SPEC
from assets.spec import Institution
from tests.reports.fixtures import URL_OPTIONS, day, frames, month_request, null_frames, range_request

TABLES = tuple(SPEC.queries)
ALFA = Institution(1, "Escola Alfa", "alfa")


def alfa_frames() -> dict[str, pl.DataFrame]:
    return frames(
        TABLES,
        courses=[
            (1, 1, "Álgebra Linear", 1, "2025-12-01 02:00"),  # Nov 30th 23:00 local
            (2, 1, "Rascunho de Física", 0, None),
            (3, 1, "Curso sem escola", 1, "2026-01-15 12:00"),
            (4, 1, "Antigo despublicado", 0, "2025-06-01 12:00"),  # draft keeping an old date
            (5, 2, "Curso da Beta", 1, "2025-01-01 12:00"),
        ],
        schools=[
            (10, 1, "Ábaco Centro"),
            (20, 1, "Escola Norte"),
            (30, 1, "academia sul"),
            (40, 1, "Zona Leste"),
            (50, 2, "Escola Beta"),
        ],
        course_schools=[
            (1, 1, 20),
            (1, 1, 10),
            (1, 1, 30),
            (1, 1, 20),  # duplicated link: the school is listed once
            (1, 1, 50),  # points at another institution's school: ignored
            (1, 2, 20),
            (1, 4, 40),
            (2, 2, 50),  # another institution's link claiming our course 2: ignored
            (2, 5, 50),
        ],
        course_views=[
            (1, 1, "2026-01-01 03:00"),  # first instant: in
            (1, 1, "2026-01-01 02:59:59"),  # Dec 31st 23:59:59 local: out
            (1, 1, "2026-01-15 12:00"),
            (1, 1, "2026-02-01 02:59:59"),  # Jan 31st 23:59:59 local: in
            (1, 1, "2026-02-01 03:00"),  # Feb 1st 00:00 local: out
            (1, 2, "2026-01-10 12:00"),
            (2, 5, "2026-01-10 12:00"),
            (2, 1, "2026-01-10 12:00"),  # other institution's event: ignored
            (1, 5, "2026-01-10 12:00"),  # course of another institution: ignored
        ],
        enrollments=[
            (1, 1, "2025-12-20 12:00", "2026-01-10 12:00"),  # completion only
            (1, 1, "2026-01-05 12:00", None),  # enrollment only
            (1, 1, "2026-02-01 02:59", "2026-02-01 03:00"),  # enrolled Jan 31st local, completed Feb 1st
            (1, 1, "2026-01-02 12:00", "2026-01-03 12:00"),  # both
            (1, 2, "2025-12-31 02:00", "2026-01-01 02:59"),  # both on Dec 30th/31st local: neither
            (1, 4, "2025-11-01 12:00", "2026-01-31 23:00"),  # completed Jan 31st 20:00 local
            (2, 1, "2026-01-05 12:00", "2026-01-06 12:00"),  # other institution: ignored
        ],
    )


def url(kind: str, course_id: int) -> str:
    if kind == "student":
        return f"https://alfa.toolzz.com.br/course/{course_id}"
    return f"https://alfa.toolzz.com.br/admin/courses/{course_id}/edit?i=1"


ROW_1 = (1, "Álgebra Linear", url("student", 1), "Publicado", url("admin", 1), 3, 3, 2, day("2025-11-30"),
         "Ábaco Centro, academia sul, Escola Norte")  # fmt: skip
ROW_2 = (2, "Rascunho de Física", url("student", 2), "Rascunho", url("admin", 2), 1, 0, 0, None, "Escola Norte")
ROW_3 = (3, "Curso sem escola", url("student", 3), "Publicado", url("admin", 3), 0, 0, 0, day("2026-01-15"), None)
ROW_4 = (4, "Antigo despublicado", url("student", 4), "Rascunho", url("admin", 4), 0, 0, 1, None, "Zona Leste")


def january(filters: dict | None = None, options: dict | None = None):
    """What the API builds for start_date=2026-01-01&end_date=2026-01-31 (end is exclusive next midnight)."""
    return range_request(
        ALFA, datetime(2026, 1, 1), datetime(2026, 2, 1), filters, URL_OPTIONS if options is None else options
    )


def test_spec_contract() -> None:
    assert SPEC.name == "course_catalog"
    assert SPEC.slug == "catalog"
    assert SPEC.monthly and SPEC.default_format == "xlsx"
    assert SPEC.filter_names == ("school_ids",)
    assert SPEC.headers == [
        "ID", "Título", "URL de Visualização (Aluno)", "Status", "URL de Edição (Admin)",
        "Visualizações", "Matrículas", "Conclusões", "Data de Publicação", "Escola",
    ]  # fmt: skip
    kinds = {c.header: c.kind for c in SPEC.columns}
    assert kinds["Data de Publicação"] == "date"
    assert [h for h, k in kinds.items() if k == "int"] == ["ID", "Visualizações", "Matrículas", "Conclusões"]
    assert all(c.key.isascii() and c.key == c.key.lower() and " " not in c.key for c in SPEC.columns)


def test_inclusive_range_every_column() -> None:
    req = january()
    assert req.query_params() == {
        "institution_id": 1,
        "start_utc": datetime(2026, 1, 1, 3, 0),
        "end_utc": datetime(2026, 2, 1, 3, 0),
    }
    out = SPEC.build(alfa_frames(), req)
    assert out.schema == SPEC.empty_frame().schema
    assert out.rows() == [ROW_1, ROW_2, ROW_3, ROW_4]


def test_monthly_partition_is_the_same_range() -> None:
    assert SPEC.build(alfa_frames(), month_request(ALFA, 2026, 1, options=URL_OPTIONS)).rows() == [
        ROW_1, ROW_2, ROW_3, ROW_4,
    ]  # fmt: skip


def test_single_day_range_at_the_edge() -> None:
    """start_date = end_date = 2026-01-31: only Jan 31st local."""
    req = range_request(ALFA, datetime(2026, 1, 31), datetime(2026, 2, 1), options=URL_OPTIONS)
    out = SPEC.build(alfa_frames(), req)
    assert out.select("id", "views", "enrollments", "completions").rows() == [
        (1, 1, 1, 0),
        (2, 0, 0, 0),
        (3, 0, 0, 0),
        (4, 0, 0, 1),
    ]


@pytest.mark.parametrize(
    ("school_ids", "expected"),
    [
        ([30], [ROW_1]),  # course 1 is also in 10 and 20: all its schools are shown
        ([20], [ROW_1, ROW_2]),
        ([10, 40], [ROW_1, ROW_4]),
        ((40, 10), [ROW_1, ROW_4]),
        ([], [ROW_1, ROW_2, ROW_3, ROW_4]),  # empty filter = no filter
        (None, [ROW_1, ROW_2, ROW_3, ROW_4]),
        ([50], []),  # another institution's school: nothing
        ([999], []),
    ],
)
def test_school_filter(school_ids: list[int] | None, expected: list[tuple]) -> None:
    filters = {} if school_ids is None else {"school_ids": school_ids}
    out = SPEC.build(alfa_frames(), january(filters))
    assert out.rows() == expected
    assert out.schema == SPEC.empty_frame().schema


@pytest.mark.parametrize("bad", ["10,20", 10, [10, "20"], [True]])
def test_school_filter_must_be_a_list_of_ints(bad: object) -> None:
    with pytest.raises(ValueError, match="school_ids"):
        SPEC.build(alfa_frames(), january({"school_ids": bad}))


def test_school_names_sort_accent_and_case_insensitively() -> None:
    data = frames(
        TABLES,
        courses=[(1, 1, "Curso", 1, "2026-01-10 12:00")],
        schools=[(1, 1, "Escola"), (2, 1, "ábaco"), (3, 1, "Biologia"), (4, 1, "Álgebra"), (5, 1, "Abaco")],
        course_schools=[(1, 1, s) for s in (1, 2, 3, 4, 5)],
    )
    out = SPEC.build(data, january())
    # key "abaco" ties: raw "Abaco" (A) before "ábaco" (á); "algebra" after "abaco".
    assert out["schools"].to_list() == ["Abaco, ábaco, Álgebra, Biologia, Escola"]


def test_urls_use_the_subdomain_and_both_templates() -> None:
    options = {
        "student_url_template": "https://{subdomain}.example.org/c/{course_id}",
        "admin_url_template": "https://admin.example.org/{institution_id}/{subdomain}/courses/{course_id}",
    }
    inst = Institution(42, "Escola X", "escolax")
    data = frames(TABLES, courses=[(7, 42, "C", 1, "2026-01-10 12:00")])
    req = range_request(inst, datetime(2026, 1, 1), datetime(2026, 2, 1), options=options)
    out = SPEC.build(data, req)
    assert out.select("student_url", "admin_url").rows() == [
        ("https://escolax.example.org/c/7", "https://admin.example.org/42/escolax/courses/7")
    ]


@pytest.mark.parametrize("missing", ["student_url_template", "admin_url_template"])
def test_missing_url_template_is_a_clear_error(missing: str) -> None:
    options = {k: v for k, v in URL_OPTIONS.items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        SPEC.build(alfa_frames(), january(options=options))


def test_unknown_placeholder_is_a_clear_error() -> None:
    options = dict(URL_OPTIONS, admin_url_template="https://{host}/courses/{course_id}")
    with pytest.raises(ValueError, match="admin_url_template"):
        SPEC.build(alfa_frames(), january(options=options))


def test_empty_institution_and_null_typed_inputs() -> None:
    out = SPEC.build(null_frames(TABLES), january())
    assert out.height == 0 and out.schema == SPEC.empty_frame().schema
    other = Institution(3, "Vazia", "vazia")
    req = range_request(other, datetime(2026, 1, 1), datetime(2026, 2, 1), options=URL_OPTIONS)
    out = SPEC.build(alfa_frames(), req)
    assert out.height == 0 and out.schema == SPEC.empty_frame().schema


def test_another_institution_sees_only_its_own_course() -> None:
    beta = Institution(2, "Beta", "beta")
    req = range_request(beta, datetime(2026, 1, 1), datetime(2026, 2, 1), options=URL_OPTIONS)
    assert SPEC.build(alfa_frames(), req).rows() == [
        (5, "Curso da Beta", "https://beta.toolzz.com.br/course/5", "Publicado",
         "https://beta.toolzz.com.br/admin/courses/5/edit?i=2", 1, 0, 0, day("2025-01-01"), "Escola Beta"),
    ]  # fmt: skip


def test_publication_date_is_local_in_a_dst_zone() -> None:
    """2026-03-08 04:30 UTC is Mar 7th 23:30 EST in New York; 2026-11-01 03:30 UTC is Oct 31st 23:30 EDT."""
    nova = Institution(7, "Nova", "nova", "America/New_York")
    data = frames(
        TABLES,
        courses=[(1, 7, "A", 1, "2026-03-08 04:30"), (2, 7, "B", 1, "2026-03-08 05:00"),
                 (3, 7, "C", 1, "2026-11-01 03:30"), (4, 7, "D", 1, "2026-11-01 04:00")],
    )  # fmt: skip
    req = month_request(nova, 2026, 3, options=URL_OPTIONS)
    assert SPEC.build(data, req)["published_on"].to_list() == [
        day("2026-03-07"),
        day("2026-03-08"),
        day("2026-10-31"),
        day("2026-11-01"),
    ]
