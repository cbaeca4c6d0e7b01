"""Storyboard usage builder on hand-computed fixtures (every column of every row).

Institution 1 is in America/Sao_Paulo (UTC-3 all year): local = UTC - 3h.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from assets.reports.storyboard_usage import SPEC
from assets.spec import Institution
from tests.reports.fixtures import frames, month_request, null_frames, ts

TABLES = tuple(SPEC.queries)
ALFA = Institution(1, "Escola Alfa", "alfa")
NOVA = Institution(7, "Nova Academy", "nova", "America/New_York")

JOAO = (1, 1, "João da Silva", "joao@alfa.com", "123.456.789-00", None)
ANA = (2, 1, "Ana Çarvalho", "ana@alfa.com", None, "12.345.678/0001-90")
ZE = (3, 1, "Zé Ninguém", "ze@alfa.com", None, None)
ALVARO = (5, 1, "Álvaro Souza", "alvaro@alfa.com", "987.654.321-00", "98.765.432/0001-10")
BETA_USER = (4, 2, "Outro Usuário", "outro@beta.com", None, None)


def alfa_frames() -> dict[str, pl.DataFrame]:
    return frames(
        TABLES,
        storyboards=[(10, 1, "Onboarding"), (11, 1, "Ética"), (12, 1, "Vazio"), (90, 2, "Outra")],
        stories=[(101, 1, 10), (102, 1, 10), (103, 1, 10), (111, 1, 11), (112, 1, 11), (901, 2, 90)],
        users=[JOAO, ANA, ZE, ALVARO, BETA_USER],
        story_views=[
            # João completes Onboarding (101 viewed twice, counted once); one May view.
            (1, 1, 10, 101, "2026-06-02 12:00"),
            (1, 1, 10, 102, "2026-06-03 12:00"),
            (1, 1, 10, 101, "2026-06-04 12:00"),
            (1, 1, 10, 103, "2026-06-05 15:00"),
            (1, 1, 10, 102, "2026-05-20 12:00"),
            # Ana: 2 of 3 in June; 103 at 02:30 UTC on June 1st is May 31st 23:30 local.
            (1, 2, 10, 101, "2026-06-10 12:00"),
            (1, 2, 10, 102, "2026-06-11 12:00"),
            (1, 2, 10, 103, "2026-06-01 02:30"),
            # Zé completes Ética; and a view filed under Onboarding of a story that is not Onboarding's.
            (1, 3, 11, 111, "2026-06-10 14:00"),
            (1, 3, 11, 112, "2026-06-12 14:00"),
            (1, 3, 10, 111, "2026-06-20 20:00"),
            # Álvaro: exactly at the month's first instant (June 1st 00:00 local).
            (1, 5, 10, 101, "2026-06-01 03:00"),
            # Other institution, or pointing at another institution's storyboard/user: never shown.
            (2, 4, 90, 901, "2026-06-10 12:00"),
            (1, 4, 90, 901, "2026-06-10 12:00"),
            (1, 1, 90, 901, "2026-06-10 12:00"),
            (1, 4, 10, 101, "2026-06-10 12:00"),
            (2, 1, 10, 101, "2026-06-10 12:00"),
        ],
        storyboard_reactions=[
            (1, 1, 10, "like", "2026-06-06 13:30"),
            (1, 1, 12, "like", "2026-06-20 10:00"),
            # Ana only reacts to Ética.
            (1, 2, 11, "like", "2026-06-15 18:00"),
            (1, 2, 11, "dislike", "2026-06-16 18:00"),
            (1, 2, 11, "like", "2026-06-17 18:00"),
            (1, 3, 11, "dislike", "2026-06-11 00:00"),
            # Álvaro: last instant of June (kept) and first instant of July (dropped).
            (1, 5, 10, "like", "2026-07-01 02:59:59"),
            (1, 5, 10, "like", "2026-07-01 03:00"),
            (2, 4, 10, "like", "2026-06-10 12:00"),
            (2, 1, 10, "dislike", "2026-06-10 12:00"),
        ],
    )


JUNE_ROWS = [
    ("Ética", "Ana Çarvalho", "ana@alfa.com", None, "12.345.678/0001-90", 2, 1, "Não", "0/2",
     ts("2026-06-17 15:00"), ts("2026-06-15 15:00"), None),
    ("Ética", "Zé Ninguém", "ze@alfa.com", None, None, 0, 1, "Sim", "2/2",
     ts("2026-06-12 11:00"), ts("2026-06-10 11:00"), ts("2026-06-12 11:00")),
    ("Onboarding", "Álvaro Souza", "alvaro@alfa.com", "987.654.321-00", "98.765.432/0001-10", 1, 0, "Não", "1/3",
     ts("2026-06-30 23:59:59"), ts("2026-06-01 00:00"), None),
    ("Onboarding", "Ana Çarvalho", "ana@alfa.com", None, "12.345.678/0001-90", 0, 0, "Não", "2/3",
     ts("2026-06-11 09:00"), ts("2026-06-10 09:00"), None),
    ("Onboarding", "João da Silva", "joao@alfa.com", "123.456.789-00", None, 1, 0, "Sim", "3/3",
     ts("2026-06-06 10:30"), ts("2026-06-02 09:00"), ts("2026-06-05 12:00")),
    ("Onboarding", "Zé Ninguém", "ze@alfa.com", None, None, 0, 0, "Não", "0/3",
     ts("2026-06-20 17:00"), ts("2026-06-20 17:00"), None),
    ("Vazio", "João da Silva", "joao@alfa.com", "123.456.789-00", None, 1, 0, "Não", "0/0",
     ts("2026-06-20 07:00"), ts("2026-06-20 07:00"), None),
]  # fmt: skip


def test_spec_contract() -> None:
    assert SPEC.name == "storyboard_usage"
    assert SPEC.slug == "storyboard-usage"
    assert SPEC.monthly and SPEC.default_format == "xlsx" and SPEC.filter_names == ()
    assert SPEC.headers == [
        "Storyboard", "Nome Completo (Usuário)", "E-mail", "CPF", "CNPJ", "Like", "Dislike",
        "Completed", "Views (Enrolled)", "Updated", "Data de início", "Data de Término",
    ]  # fmt: skip
    kinds = {c.header: c.kind for c in SPEC.columns}
    assert [h for h, k in kinds.items() if k == "datetime"] == ["Updated", "Data de início", "Data de Término"]
    assert [h for h, k in kinds.items() if k == "int"] == ["Like", "Dislike"]
    assert all(c.key.isascii() and c.key == c.key.lower() and " " not in c.key for c in SPEC.columns)
    for sql in SPEC.queries.values():
        assert ":institution_id" in sql


def test_june_every_column() -> None:
    out = SPEC.build(alfa_frames(), month_request(ALFA, 2026, 6))
    assert out.schema == SPEC.empty_frame().schema
    assert out.rows() == JUNE_ROWS


def test_previous_month_gets_the_0230_utc_view_of_june_first() -> None:
    out = SPEC.build(alfa_frames(), month_request(ALFA, 2026, 5))
    assert out.rows() == [
        ("Onboarding", "Ana Çarvalho", "ana@alfa.com", None, "12.345.678/0001-90", 0, 0, "Não", "1/3",
         ts("2026-05-31 23:30"), ts("2026-05-31 23:30"), None),
        ("Onboarding", "João da Silva", "joao@alfa.com", "123.456.789-00", None, 0, 0, "Não", "1/3",
         ts("2026-05-20 09:00"), ts("2026-05-20 09:00"), None),
    ]  # fmt: skip


def test_empty_month_has_zero_rows_and_the_schema() -> None:
    out = SPEC.build(alfa_frames(), month_request(ALFA, 2026, 8))
    assert out.height == 0
    assert out.schema == SPEC.empty_frame().schema
    assert out.columns == [c.key for c in SPEC.columns]


def test_all_null_typed_empty_inputs() -> None:
    """An empty PostgreSQL result arrives with Null-typed columns."""
    out = SPEC.build(null_frames(TABLES), month_request(ALFA, 2026, 6))
    assert out.height == 0 and out.schema == SPEC.empty_frame().schema


def test_another_institution_sees_only_its_own_rows() -> None:
    beta = Institution(2, "Beta", "beta")
    out = SPEC.build(alfa_frames(), month_request(beta, 2026, 6))
    assert out.rows() == [
        ("Outra", "Outro Usuário", "outro@beta.com", None, None, 0, 0, "Sim", "1/1",
         ts("2026-06-10 09:00"), ts("2026-06-10 09:00"), ts("2026-06-10 09:00")),
    ]  # fmt: skip


def test_reaction_kinds_are_normalised_and_unknown_kinds_ignored() -> None:
    data = frames(
        TABLES,
        storyboards=[(10, 1, "Onboarding")],
        stories=[(101, 1, 10)],
        users=[JOAO],
        storyboard_reactions=[
            (1, 1, 10, "LIKE", "2026-06-02 12:00"),
            (1, 1, 10, " dislike", "2026-06-03 12:00"),
            (1, 1, 10, "love", "2026-06-04 12:00"),
        ],
    )
    out = SPEC.build(data, month_request(ALFA, 2026, 6))
    assert out.rows() == [
        ("Onboarding", "João da Silva", "joao@alfa.com", "123.456.789-00", None, 1, 1, "Não", "0/1",
         ts("2026-06-03 09:00"), ts("2026-06-02 09:00"), None),
    ]  # fmt: skip


def test_needs_a_period() -> None:
    req = month_request(ALFA, 2026, 6)
    with pytest.raises(ValueError, match="period"):
        SPEC.build(alfa_frames(), type(req)(institution=ALFA, start=None, end=None, as_of=req.as_of))


def test_missing_frame_is_a_clear_error() -> None:
    data = alfa_frames()
    del data["stories"]
    with pytest.raises(KeyError, match="stories"):
        SPEC.build(data, month_request(ALFA, 2026, 6))


# ---------------------------------------------------------------- DST (America/New_York)


def nova_frames() -> dict[str, pl.DataFrame]:
    mary = (71, 7, "Mary Ann", "mary@nova.edu", None, None)
    bob = (72, 7, "Bob", "bob@nova.edu", None, None)
    return frames(
        TABLES,
        storyboards=[(70, 7, "Tour")],
        stories=[(701, 7, 70), (702, 7, 70)],
        users=[mary, bob],
        story_views=[
            # March: EST (UTC-5) until Sunday 8th 02:00, then EDT (UTC-4).
            (7, 71, 70, 701, "2026-03-01 04:59:59"),  # Feb 28th 23:59:59 EST -> February
            (7, 71, 70, 701, "2026-03-01 05:00"),  # Mar 1st 00:00 EST
            (7, 71, 70, 702, "2026-04-01 03:59:59"),  # Mar 31st 23:59:59 EDT
            (7, 72, 70, 701, "2026-03-08 06:59"),  # 01:59 EST, just before the gap
            # November: EDT until Sunday 1st 02:00, then EST; 01:00-02:00 happens twice.
            (7, 71, 70, 701, "2026-11-01 03:59:59"),  # Oct 31st 23:59:59 EDT -> October
            (7, 71, 70, 701, "2026-11-01 05:30"),  # 01:30 EDT
            (7, 71, 70, 702, "2026-11-01 06:30"),  # 01:30 EST
        ],
        storyboard_reactions=[
            (7, 71, 70, "like", "2026-04-01 04:00"),  # Apr 1st 00:00 EDT -> April
            (7, 72, 70, "like", "2026-03-08 07:00"),  # 03:00 EDT, just after the gap
            (7, 71, 70, "like", "2026-12-01 04:59:59"),  # Nov 30th 23:59:59 EST
            (7, 71, 70, "dislike", "2026-12-01 05:00"),  # Dec 1st 00:00 EST -> December
        ],
    )


def test_dst_march_bounds_and_rows() -> None:
    req = month_request(NOVA, 2026, 3)
    assert req.query_params() == {
        "institution_id": 7,
        "start_utc": datetime(2026, 3, 1, 5, 0),
        "end_utc": datetime(2026, 4, 1, 4, 0),
    }
    assert SPEC.build(nova_frames(), req).rows() == [
        ("Tour", "Bob", "bob@nova.edu", None, None, 1, 0, "Não", "1/2",
         ts("2026-03-08 03:00"), ts("2026-03-08 01:59"), None),
        ("Tour", "Mary Ann", "mary@nova.edu", None, None, 0, 0, "Sim", "2/2",
         ts("2026-03-31 23:59:59"), ts("2026-03-01 00:00"), ts("2026-03-31 23:59:59")),
    ]  # fmt: skip


def test_dst_november_bounds_and_repeated_hour() -> None:
    req = month_request(NOVA, 2026, 11)
    assert req.query_params() == {
        "institution_id": 7,
        "start_utc": datetime(2026, 11, 1, 4, 0),
        "end_utc": datetime(2026, 12, 1, 5, 0),
    }
    assert SPEC.build(nova_frames(), req).rows() == [
        ("Tour", "Mary Ann", "mary@nova.edu", None, None, 1, 0, "Sim", "2/2",
         ts("2026-11-30 23:59:59"), ts("2026-11-01 01:30"), ts("2026-11-01 01:30")),
    ]  # fmt: skip


def test_dst_neighbouring_months_get_the_edge_events() -> None:
    feb = SPEC.build(nova_frames(), month_request(NOVA, 2026, 2)).rows()
    apr = SPEC.build(nova_frames(), month_request(NOVA, 2026, 4)).rows()
    octo = SPEC.build(nova_frames(), month_request(NOVA, 2026, 10)).rows()
    dec = SPEC.build(nova_frames(), month_request(NOVA, 2026, 12)).rows()
    assert feb == [("Tour", "Mary Ann", "mary@nova.edu", None, None, 0, 0, "Não", "1/2",
                    ts("2026-02-28 23:59:59"), ts("2026-02-28 23:59:59"), None)]  # fmt: skip
    assert apr == [("Tour", "Mary Ann", "mary@nova.edu", None, None, 1, 0, "Não", "0/2",
                    ts("2026-04-01 00:00"), ts("2026-04-01 00:00"), None)]  # fmt: skip
    assert octo == [("Tour", "Mary Ann", "mary@nova.edu", None, None, 0, 0, "Não", "1/2",
                     ts("2026-10-31 23:59:59"), ts("2026-10-31 23:59:59"), None)]  # fmt: skip
    assert dec == [("Tour", "Mary Ann", "mary@nova.edu", None, None, 0, 1, "Não", "0/2",
                    ts("2026-12-01 00:00"), ts("2026-12-01 00:00"), None)]  # fmt: skip


def test_order_title_then_name_then_user_id_then_storyboard_id() -> None:
    """Accent/case-insensitive keys first, raw text breaks ties, then ids (equal titles/names)."""
    data = frames(
        TABLES,
        storyboards=[(20, 1, "Mesmo"), (21, 1, "Mesmo"), (22, 1, "Ética"), (23, 1, "etica"), (24, 1, "Etica")],
        users=[
            (9, 1, "Ana", "ana9@x", None, None),
            (8, 1, "Ana", "ana8@x", None, None),
            (7, 1, "ana", "ana7@x", None, None),
            (6, 1, "Álvaro", "alvaro6@x", None, None),
        ],
        # one like on storyboard 20, two on 21, so the rows of one user tell the storyboards apart
        storyboard_reactions=[(1, u, 21, "like", "2026-06-10 12:00") for u in (9, 8, 7) for _ in range(2)]
        + [(1, u, 20, "like", "2026-06-10 12:00") for u in (9, 8, 7)]
        + [(1, 6, b, "dislike", "2026-06-10 12:00") for b in (22, 23, 24, 21)],
    )
    out = SPEC.build(data, month_request(ALFA, 2026, 6))
    assert out.select("storyboard", "email").rows() == [
        ("Etica", "alvaro6@x"),
        ("etica", "alvaro6@x"),
        ("Ética", "alvaro6@x"),
        ("Mesmo", "alvaro6@x"),
        ("Mesmo", "ana8@x"),
        ("Mesmo", "ana8@x"),
        ("Mesmo", "ana9@x"),
        ("Mesmo", "ana9@x"),
        ("Mesmo", "ana7@x"),
        ("Mesmo", "ana7@x"),
    ]
    # storyboard id is the last key: each Ana's storyboard 20 (1 like) comes before 21 (2 likes)
    assert out.filter(pl.col("storyboard") == "Mesmo")["likes"].to_list() == [0, 1, 2, 1, 2, 1, 2]


def test_a_duplicated_user_row_gives_one_name_sorted_by_that_name() -> None:
    """Defence in depth: a user id twice in the extract (a broken warehouse) is listed once, with
    the first row's texts, and sorted by that same name."""
    base = alfa_frames()
    users = base["users"]
    dup = users.filter(pl.col("id") == 1).with_columns(pl.lit("Aaron Duplicado").alias("name"))
    frames_ = {**base, "users": pl.concat([users, dup])}
    out = SPEC.build(frames_, month_request(ALFA, 2026, 6))
    assert out.rows() == JUNE_ROWS
