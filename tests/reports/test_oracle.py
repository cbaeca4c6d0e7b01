"""Cross-check of both builders against an independent SQL oracle on seeded random data.

The hand-computed tests pin the rules; this one checks they hold on messier data
(many users, re-views, orphan views, empty storyboards, events packed around the
period edges, three timezones including DST and a half-hour offset). The oracle
computes each report in a single DuckDB SQL query, filtering on *local* time
(``timezone(tz, ts AT TIME ZONE 'UTC')`` and local dates) instead of the UTC
bounds the builders use, so the two paths share no code.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from assets.reports import course_catalog, storyboard_usage
from assets.spec import Institution
from orchestration.warehouse.client import Warehouse
from tests.reports.fixtures import URL_OPTIONS, month_request, range_request

INSTITUTIONS = (
    Institution(1, "Escola Alfa", "alfa", "America/Sao_Paulo"),
    Institution(2, "Nova Academy", "nova", "America/New_York"),
    Institution(3, "Ganga Vidya", "ganga", "Asia/Kolkata"),
)
FIRST = ("João", "Ana", "Zé", "Álvaro", "Márcia", "Luís", "Çecília", "ana", "Bruno", "Érica")
LAST = ("da Silva", "Conceição", "Araújo", "Souza", "Ñúñez", "Lima")
SCHOOL_NAMES = ("Escola Norte", "ábaco", "Abaco", "Álgebra Sul", "Biologia", "escola leste")
C = datetime(2025, 1, 1)


def _edge_instants(inst: Institution) -> list[datetime]:
    """UTC instants around local midnights of the period edges (and the DST switch)."""
    tz, utc = ZoneInfo(inst.timezone), ZoneInfo("UTC")
    out = []
    for y, m, d in ((2026, 3, 1), (2026, 4, 1), (2026, 3, 8), (2026, 3, 15), (2026, 3, 16)):
        midnight = datetime(y, m, d, tzinfo=tz).astimezone(utc).replace(tzinfo=None)
        out += [midnight + timedelta(seconds=s) for s in (-3600, -1, 0, 1, 3600)]
    return out


def generate(path: Path, seed: int = 7) -> None:
    rnd = random.Random(seed)
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in (
        "institutions", "users", "storyboards", "stories", "story_views", "storyboard_reactions",
        "schools", "courses", "course_schools", "course_views", "enrollments")}  # fmt: skip
    lo, hi = datetime(2026, 2, 20), datetime(2026, 4, 10)

    def when(inst: Institution) -> datetime:
        if rnd.random() < 0.3:
            return rnd.choice(_edge_instants(inst))
        return lo + timedelta(seconds=rnd.randrange(int((hi - lo).total_seconds())))

    uid = sid = stid = schid = cid = 0
    for inst in INSTITUTIONS:
        i = inst.id
        rows["institutions"].append((i, inst.name, inst.subdomain, inst.timezone))
        users = []
        for _ in range(15):
            uid += 1
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            cpf = None if rnd.random() < 0.4 else f"{uid:03d}.000.000-00"
            cnpj = None if rnd.random() < 0.7 else f"{uid:02d}.000.000/0001-00"
            deleted = None if rnd.random() < 0.8 else when(inst)
            rows["users"].append((uid, i, f"u{uid}", None, first, last, f"{first} {last}", f"u{uid}@{inst.subdomain}.com",
                                  cpf, cnpj, 4, C, None, deleted))  # fmt: skip
            users.append(uid)
        boards: dict[int, list[int]] = {}
        for n in range(5):
            sid += 1
            title = rnd.choice(("Ética", "Onboarding", "etica", "Segurança", "Vendas")) + f" {n % 3}"
            rows["storyboards"].append((sid, i, title, C, None if n else datetime(2026, 3, 10)))
            boards[sid] = []
            for pos in range(n % 4 if n else 0):  # the first storyboard has no stories
                stid += 1
                rows["stories"].append((stid, i, sid, pos))
                boards[sid].append(stid)
        all_stories = [s for ss in boards.values() for s in ss]
        for _ in range(250):
            board = rnd.choice(list(boards))
            own = boards[board]
            story = rnd.choice(own) if own and rnd.random() < 0.93 else rnd.choice(all_stories)
            rows["story_views"].append((i, rnd.choice(users[:10]), board, story, when(inst)))
        for _ in range(80):
            kind = rnd.choice(("like", "dislike", "like"))
            rows["storyboard_reactions"].append((i, rnd.choice(users), rnd.choice(list(boards)), kind, when(inst)))
        schools = []
        for _ in range(4):
            schid += 1
            rows["schools"].append((schid, i, rnd.choice(SCHOOL_NAMES)))
            schools.append(schid)
        for _ in range(8):
            cid += 1
            status = rnd.choice((0, 1, 1))
            published = when(inst) if status == 1 or rnd.random() < 0.3 else None
            rows["courses"].append((cid, i, f"Curso {cid}", status, published, C))
            for school in rnd.sample(schools, rnd.choice((0, 1, 2, 3))):
                rows["course_schools"].append((i, cid, school))
            for _ in range(rnd.randrange(25)):
                rows["course_views"].append((i, cid, rnd.choice(users), when(inst)))
            for _ in range(rnd.randrange(12)):
                enrolled = when(inst)
                done = None if rnd.random() < 0.4 else max(enrolled, when(inst))
                rows["enrollments"].append((i, cid, rnd.choice(users), enrolled, done))

    warehouse_sql = Path(__file__).resolve().parents[2] / "assets" / "warehouse"
    con = duckdb.connect(str(path))
    try:
        con.execute((warehouse_sql / "schema.sql").read_text())
        for table, data in rows.items():  # bulk insert through Arrow: executemany is row by row
            frame = pl.DataFrame(data, orient="row", infer_schema_length=None)
            con.register("batch", frame.to_arrow())
            con.execute(f"INSERT INTO {table} SELECT * FROM batch")
            con.unregister("batch")
    finally:
        con.close()


@pytest.fixture(scope="module")
def oracle_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "random.duckdb"
    generate(path)
    return path


LOCAL = "timezone($tz, {col} AT TIME ZONE 'UTC')"

STORYBOARD_ORACLE = f"""
WITH v AS (
    SELECT * FROM (SELECT *, {LOCAL.format(col="viewed_at")} AS lt FROM story_views WHERE institution_id = $iid)
    WHERE lt >= $ls AND lt < $le
), r AS (
    SELECT * FROM (SELECT *, {LOCAL.format(col="reacted_at")} AS lt FROM storyboard_reactions
                   WHERE institution_id = $iid AND kind IN ('like', 'dislike'))
    WHERE lt >= $ls AND lt < $le
), i AS (
    SELECT user_id, storyboard_id, lt FROM v UNION ALL SELECT user_id, storyboard_id, lt FROM r
), total AS (
    SELECT storyboard_id, count(*) AS n FROM stories WHERE institution_id = $iid GROUP BY storyboard_id
), viewed AS (
    SELECT v.user_id, v.storyboard_id, count(DISTINCT v.story_id) AS n
    FROM v JOIN stories s ON s.id = v.story_id AND s.storyboard_id = v.storyboard_id
    GROUP BY 1, 2
), p AS (
    SELECT i.user_id, i.storyboard_id, min(i.lt) AS first_at, max(i.lt) AS last_at,
           (SELECT count(*) FROM r WHERE r.user_id = i.user_id AND r.storyboard_id = i.storyboard_id AND kind = 'like') AS likes,
           (SELECT count(*) FROM r WHERE r.user_id = i.user_id AND r.storyboard_id = i.storyboard_id AND kind = 'dislike') AS dislikes,
           (SELECT max(lt) FROM v WHERE v.user_id = i.user_id AND v.storyboard_id = i.storyboard_id) AS last_view
    FROM i GROUP BY 1, 2
)
SELECT b.title, u.name, u.email, u.cpf, u.cnpj, p.likes, p.dislikes,
       CASE WHEN coalesce(t.n, 0) > 0 AND coalesce(w.n, 0) = t.n THEN 'Sim' ELSE 'Não' END,
       coalesce(w.n, 0) || '/' || coalesce(t.n, 0),
       p.last_at, p.first_at,
       CASE WHEN coalesce(t.n, 0) > 0 AND coalesce(w.n, 0) = t.n THEN p.last_view END
FROM p
JOIN storyboards b ON b.id = p.storyboard_id AND b.institution_id = $iid
JOIN users u ON u.id = p.user_id AND u.institution_id = $iid
LEFT JOIN total t ON t.storyboard_id = p.storyboard_id
LEFT JOIN viewed w ON w.user_id = p.user_id AND w.storyboard_id = p.storyboard_id
"""

CATALOG_ORACLE = f"""
WITH names AS (
    SELECT cs.course_id, string_agg(s.name, ', ' ORDER BY lower(strip_accents(s.name)), s.name) AS names
    FROM (SELECT DISTINCT course_id, school_id FROM course_schools WHERE institution_id = $iid) cs
    JOIN schools s ON s.id = cs.school_id AND s.institution_id = $iid
    GROUP BY 1
)
SELECT c.id, c.title,
       'https://' || $sub || '.toolzz.com.br/course/' || c.id,
       CASE WHEN c.status = 1 THEN 'Publicado' ELSE 'Rascunho' END,
       'https://' || $sub || '.toolzz.com.br/admin/courses/' || c.id || '/edit?i=' || $iid,
       (SELECT count(*) FROM course_views v WHERE v.institution_id = $iid AND v.course_id = c.id
          AND CAST({LOCAL.format(col="v.viewed_at")} AS DATE) BETWEEN $sd AND $ed),
       (SELECT count(*) FROM enrollments e WHERE e.institution_id = $iid AND e.course_id = c.id
          AND CAST({LOCAL.format(col="e.enrolled_at")} AS DATE) BETWEEN $sd AND $ed),
       (SELECT count(*) FROM enrollments e WHERE e.institution_id = $iid AND e.course_id = c.id
          AND CAST({LOCAL.format(col="e.completed_at")} AS DATE) BETWEEN $sd AND $ed),
       CASE WHEN c.status = 1 THEN CAST({LOCAL.format(col="c.published_at")} AS DATE) END,
       n.names
FROM courses c LEFT JOIN names n ON n.course_id = c.id
WHERE c.institution_id = $iid
  AND (len($schools) = 0 OR EXISTS (
      SELECT 1 FROM course_schools cs JOIN schools s ON s.id = cs.school_id AND s.institution_id = $iid
      WHERE cs.institution_id = $iid AND cs.course_id = c.id AND list_contains($schools, cs.school_id)))
ORDER BY c.id
"""


def _oracle(path: Path, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("inst", INSTITUTIONS, ids=lambda i: i.timezone)
@pytest.mark.parametrize("month", [2, 3, 4])
def test_storyboard_usage_matches_oracle(oracle_db: Path, inst: Institution, month: int) -> None:
    request = month_request(inst, 2026, month)
    extracted = Warehouse(f"duckdb:///{oracle_db}").query_many(storyboard_usage.SPEC.queries, request.query_params())
    out = storyboard_usage.SPEC.build(extracted, request)
    nxt = date(2026, month + 1, 1)
    expected = _oracle(oracle_db, STORYBOARD_ORACLE, {
        "iid": inst.id, "tz": inst.timezone, "ls": datetime(2026, month, 1), "le": datetime(nxt.year, nxt.month, 1)})  # fmt: skip
    assert len(expected) > 5  # the random data really exercises the month
    assert sorted(out.rows(), key=repr) == sorted(expected, key=repr)
    assert {r[7] for r in expected} == {"Sim", "Não"}


@pytest.mark.parametrize("inst", INSTITUTIONS, ids=lambda i: i.timezone)
@pytest.mark.parametrize(
    ("start_date", "end_date", "schools"),
    [
        (date(2026, 3, 1), date(2026, 3, 31), []),
        (date(2026, 3, 8), date(2026, 3, 15), []),
        (date(2026, 3, 15), date(2026, 3, 15), []),
        (date(2026, 2, 20), date(2026, 4, 10), [2, 6, 10]),
    ],
)
def test_course_catalog_matches_oracle(
    oracle_db: Path, inst: Institution, start_date: date, end_date: date, schools: list[int]
) -> None:
    # What the API does with the inclusive end_date: the next day's local midnight, exclusive.
    start = datetime.combine(start_date, datetime.min.time())
    end = datetime.combine(end_date + timedelta(days=1), datetime.min.time())
    request = range_request(inst, start, end, {"school_ids": schools}, URL_OPTIONS)
    extracted = Warehouse(f"duckdb:///{oracle_db}").query_many(course_catalog.SPEC.queries, request.query_params())
    out = course_catalog.SPEC.build(extracted, request)
    expected = _oracle(oracle_db, CATALOG_ORACLE, {
        "iid": inst.id, "tz": inst.timezone, "sub": inst.subdomain, "sd": start_date, "ed": end_date,
        "schools": schools})  # fmt: skip
    assert out.rows() == expected
    if not schools:
        assert len(expected) == 8
    assert any(r[5] or r[6] or r[7] for r in expected)
