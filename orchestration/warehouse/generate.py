"""Deterministic synthetic warehouse (``lxp-reports generate``).

Why it looks the way it does:

* **Deterministic**: every random draw comes from a NumPy generator keyed by
  (seed, institution id, stream name), and the clock is an input: ``now`` (the
  CLI's ``--as-of``, default 00:00 UTC of the current day, never the wall
  clock's seconds). Same (scale, seed, ``now``) -> byte-identical tables; same
  (scale, seed, month of ``now``) -> the same history, ``now`` only cutting the
  still-open current month (events after it are dropped), so a later ``now`` in
  the same month reveals a superset of core events and never reshuffles the
  past. Institution *k* does not depend on how many institutions come after it
  (``with_institutions`` scales a size class to N institutions).
* **Local months**: each institution gets activity in each of the 12 months
  before its current *local* month and in the current month up to ``now``.
  Month windows are computed per institution in its own timezone (DST
  included) and events are drawn inside those UTC instants, so reports that
  convert to local time see all 13 months.
* **Set-wise**: the only Python loops run over institutions and months; rows
  are drawn as NumPy arrays (Bernoulli matrices users x items per month,
  ``np.repeat`` expansions for views) and assembled in Polars.
* **Awkward cases on purpose** (reports must handle them): accented pt-BR
  names, null CPF, CNPJ accounts, users without any activity, users deleted
  mid-month after activity, blocked users, single-story and deleted
  storyboards, re-views, reactions without views and views without reactions,
  draft courses, courses in zero/one/several schools, institutions in
  timezones with and without DST.
* **Big institution** (scales with ``big_institution_users``): the last id.
  In its last full local month every eligible user takes part in a campaign
  touching ~``CAMPAIGN_DENSITY`` of the storyboards, so its storyboard usage
  report has > 1.1M rows at scale ``large``. It also holds
  ``big_institution_library_contents`` library contents.

Timestamps are naive UTC (``Datetime('us')``), whole seconds.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from orchestration.warehouse import names as V
from orchestration.warehouse.scales import SCALES, Scale
from orchestration.warehouse.tables import conform, empty_frame, sort_keys, table_schemas

CORE_TABLES: tuple[str, ...] = (
    "institutions",
    "users",
    "storyboards",
    "stories",
    "story_views",
    "storyboard_reactions",
    "schools",
    "courses",
    "course_schools",
    "course_views",
    "enrollments",
    "library_contents",
    "library_content_links",
)
STIFT_TABLES: tuple[str, ...] = (
    "groups",
    "group_members",
    "disciplines",
    "subjects",
    "teacher_disciplines",
    "questions",
    "teacher_schedules",
    "booking_rooms",
    "bookings",
    "nps_answers",
)

MONTHS = 13  # 12 full months before the current one + the current (open) month
LAST_FULL_MONTH = MONTHS - 2
NEVER = np.int64(2**62)  # "no timestamp" sentinel while working in int seconds
DAY = 86_400
YEAR = 365 * DAY
CAMPAIGN_DENSITY = 0.7  # share of (user, storyboard) pairs touched in the big campaign month

DEMO_INSTITUTION = (1, "Instituição Demo", "demo", "America/Sao_Paulo")
# Institutions 2.. cycle through these; the first ones guarantee DST and non-DST
# zones, east and west of UTC, already at the smallest scale.
TIMEZONES: tuple[str, ...] = (
    "America/New_York",
    "Asia/Tokyo",
    "America/Manaus",
    "Europe/Lisbon",
    "America/Sao_Paulo",
    "America/Recife",
    "America/Sao_Paulo",
    "America/Cuiaba",
    "America/Fortaleza",
    "America/Sao_Paulo",
    "America/Rio_Branco",
    "America/Bahia",
    "America/Sao_Paulo",
    "America/Belem",
)
MONOLITH_TYPE = {"text": 1, "video_online": 2, "html5": 3}
FILES_BASE = "https://arquivos.lxp.local"


# ---------------------------------------------------------------- small vectorized helpers
def _uniform(r: np.random.Generator, lo: np.ndarray | int, hi: np.ndarray | int, n: int) -> np.ndarray:
    """Integer seconds uniformly in [lo, hi) (hi > lo assumed by callers)."""
    lo_a = np.asarray(lo, dtype=np.int64)
    span = np.asarray(hi, dtype=np.int64) - lo_a
    return lo_a + (r.random(n) * span).astype(np.int64)


def _pick(vocab: list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(vocab, dtype=pl.String).gather(idx)


def _ascii(mat: np.ndarray) -> pl.Series:
    """Rows of an (n, w) uint8 ASCII matrix -> a String series (no Python per-row work)."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    n, w = mat.shape
    if n == 0:
        return pl.Series([], dtype=pl.String)
    return pl.Series(mat.view(f"S{w}").ravel()).cast(pl.String)


def _layout(n: int, parts: list[np.ndarray | bytes]) -> np.ndarray:
    """Concatenate digit/char columns and literal separators into an (n, w) ASCII matrix."""
    cols = [np.tile(np.frombuffer(p, dtype=np.uint8), (n, 1)) if isinstance(p, bytes) else p for p in parts]
    return np.hstack(cols).astype(np.uint8)


def _cpfs(r: np.random.Generator, n: int) -> pl.Series:
    """Valid-check-digit CPFs formatted 123.456.789-09."""
    d = r.integers(0, 10, (n, 9))
    d[:, 0] = np.where((d == d[:, :1]).all(axis=1), (d[:, 0] + 1) % 10, d[:, 0])  # no 111.111.111-11
    v1 = (d * np.arange(10, 1, -1)).sum(axis=1) * 10 % 11 % 10
    d10 = np.hstack([d, v1[:, None]])
    v2 = (d10 * np.arange(11, 1, -1)).sum(axis=1) * 10 % 11 % 10
    a = np.hstack([d10, v2[:, None]]) + 48
    return _ascii(_layout(n, [a[:, 0:3], b".", a[:, 3:6], b".", a[:, 6:9], b"-", a[:, 9:11]]))


def _cnpjs(r: np.random.Generator, n: int) -> pl.Series:
    """Valid-check-digit CNPJs (head office /0001) formatted 12.345.678/0001-90."""
    d = np.hstack([r.integers(0, 10, (n, 8)), np.tile([0, 0, 0, 1], (n, 1))])
    w1 = np.array([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    r1 = (d * w1).sum(axis=1) % 11
    v1 = np.where(r1 < 2, 0, 11 - r1)
    d13 = np.hstack([d, v1[:, None]])
    r2 = (d13 * np.concatenate([[6], w1])).sum(axis=1) % 11
    v2 = np.where(r2 < 2, 0, 11 - r2)
    a = np.hstack([d13, v2[:, None]]) + 48
    return _ascii(_layout(n, [a[:, 0:2], b".", a[:, 2:5], b".", a[:, 5:8], b"/", a[:, 8:12], b"-", a[:, 12:14]]))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _uuids(r: np.random.Generator, n: int) -> pl.Series:
    """Random (version 4 layout) UUID strings drawn from the seeded generator."""
    b = r.integers(0, 256, (n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    h = np.empty((n, 32), dtype=np.uint8)
    h[:, 0::2] = _HEX[b >> 4]
    h[:, 1::2] = _HEX[b & 0x0F]
    return _ascii(_layout(n, [h[:, 0:8], b"-", h[:, 8:12], b"-", h[:, 12:16], b"-", h[:, 16:20], b"-", h[:, 20:32]]))


_ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", dtype=np.uint8)


def _tokens(r: np.random.Generator, n: int, width: int) -> pl.Series:
    return _ascii(_ALNUM[r.integers(0, len(_ALNUM), (n, width))])


def _null_where(s: pl.Series | pl.Expr, mask: np.ndarray) -> pl.Expr:
    expr = s if isinstance(s, pl.Expr) else pl.lit(s)
    return pl.when(pl.lit(pl.Series(mask, dtype=pl.Boolean))).then(None).otherwise(expr)


def _frame(cols: dict[str, Any]) -> pl.DataFrame:
    """Columns (NumPy arrays, Series or expressions) -> one frame; bare expressions are evaluated."""
    plain = {k: v for k, v in cols.items() if not isinstance(v, pl.Expr)}
    df = pl.DataFrame(plain)
    exprs = [v.alias(k) for k, v in cols.items() if isinstance(v, pl.Expr)]
    return df.with_columns(exprs).select(list(cols)) if exprs else df


def _finish(table: str, frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate per-institution parts, turn int seconds into timestamps, cast to the DDL, sort."""
    if not frames:
        return empty_frame(table)
    keys = sort_keys(table)
    if keys[0] == "institution_id":
        # Parts come in institution order: sorting each on the remaining keys is far cheaper
        # than one multi-key sort of tens of millions of rows.
        frames = [f.sort(keys[1:], maintain_order=True) if len(keys) > 1 else f for f in frames]
        df = pl.concat(frames, how="vertical_relaxed")
    else:
        df = pl.concat(frames, how="vertical_relaxed").sort(keys, maintain_order=True)
    ts = [c for c, t in table_schemas()[table].items() if t == pl.Datetime("us") and df.schema[c].is_integer()]
    df = df.with_columns(
        pl.when(pl.col(c).ge(NEVER)).then(None).otherwise(pl.col(c) * 1_000_000).cast(pl.Datetime("us")).alias(c)
        for c in ts
    )
    return conform(table, df)


def _distinct_choice(r: np.random.Generator, counts: np.ndarray, pool: int) -> tuple[np.ndarray, np.ndarray]:
    """For row i choose counts[i] distinct items of range(pool): returns (row, item) pairs."""
    if len(counts) == 0 or pool == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ranks = np.argsort(np.argsort(r.random((len(counts), pool)), axis=1), axis=1)
    rows, items = np.nonzero(ranks < np.minimum(counts, pool)[:, None])
    return rows.astype(np.int64), items.astype(np.int64)


# ---------------------------------------------------------------- institutions and their months
@dataclass(frozen=True)
class _Inst:
    id: int
    name: str
    subdomain: str
    timezone: str
    big: bool
    seed: int
    starts: np.ndarray  # UTC seconds of each local month start (MONTHS)
    ends: np.ndarray  # UTC seconds of each local month end (exclusive)
    now: int  # UTC seconds

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.id, zlib.crc32(stream.encode())])

    @property
    def window_start(self) -> int:
        return int(self.starts[0])

    @property
    def current_start(self) -> int:
        """Entities (users, courses, contents...) are created before this, so `now` never reshapes them."""
        return int(self.starts[-1])


def local_month_bounds(timezone: str, now: datetime, months: int = MONTHS) -> tuple[np.ndarray, np.ndarray]:
    """UTC epoch seconds of [start, end) of the `months` local months ending with `now`'s local month."""
    tz = ZoneInfo(timezone)
    local = now.replace(tzinfo=UTC).astimezone(tz)
    index = local.year * 12 + local.month - 1
    firsts = [datetime(i // 12, i % 12 + 1, 1, tzinfo=tz) for i in range(index - months + 1, index + 2)]
    stamps = np.array([int(d.timestamp()) for d in firsts], dtype=np.int64)
    return stamps[:-1], stamps[1:]


def _institution_rows(scale: Scale) -> list[tuple[int, str, str, str, bool]]:
    rows = [(*DEMO_INSTITUTION, False)]
    seen: dict[str, int] = {}
    for iid in range(2, scale.institutions + 1):
        if scale.big_institution_users and iid == scale.institutions:
            rows.append((iid, V.BIG_INSTITUTION_NAME, "rede-agora", "America/Sao_Paulo", True))
            continue
        base = V.INSTITUTION_NAMES[(iid - 2) % len(V.INSTITUTION_NAMES)]
        k = seen[base] = seen.get(base, 0) + 1
        name = base if k == 1 else f"{base} — Unidade {k}"
        sub = V.ascii_slug(base, "-") + ("" if k == 1 else f"-{k}")
        rows.append((iid, name, sub, TIMEZONES[(iid - 2) % len(TIMEZONES)], False))
    if scale.big_institution_users and scale.institutions == 1:
        raise ValueError("a scale with a big institution needs at least 2 institutions (1 is the demo)")
    return rows


@dataclass(frozen=True)
class _Sizes:
    users: int
    storyboards: int
    courses: int
    schools: int
    library: int


def _sizes(scale: Scale, inst: _Inst) -> _Sizes:
    """Per-institution sizes: the demo is exactly the scale, others vary +-40% (realistic spread)."""
    if inst.big:
        return _Sizes(
            scale.big_institution_users,
            scale.big_institution_storyboards or scale.storyboards_per_institution,
            scale.courses_per_institution,
            scale.schools_per_institution,
            scale.big_institution_library_contents or scale.library_contents_per_institution,
        )
    f = 1.0 if inst.id == 1 else 0.6 + 0.8 * inst.rng("sizes").random(5)
    f = np.broadcast_to(f, 5)
    base = (
        scale.users_per_institution,
        scale.storyboards_per_institution,
        scale.courses_per_institution,
        scale.schools_per_institution,
        scale.library_contents_per_institution,
    )
    minimum = (12, 4, 4, 2, 5)
    return _Sizes(*(max(m, int(round(b * x))) for b, x, m in zip(base, f, minimum, strict=True)))


# ---------------------------------------------------------------- per-institution builders
# Local user index -> forced attributes, so every institution has the awkward cases
# whatever the draws ("created" is relative to the window start).
FORCED_USERS: dict[int, dict[str, Any]] = {
    0: {"privilege": 1, "inactive": False, "deleted_flag": False, "blocked_flag": False},  # owner
    1: {"privilege": 2, "inactive": False, "deleted_flag": False},  # admin
    2: {"privilege": 3, "inactive": False, "deleted_flag": False},  # teacher
    3: {"privilege": 4, "inactive": True},  # never did anything
    4: {
        "privilege": 4,
        "inactive": False,
        "deleted_flag": True,
        "blocked_flag": False,
        "p_active": 0.98,
        "created": -100 * DAY,
    },  # active, then deleted mid-month (see _users)
    5: {"privilege": 4, "cpf_null": True, "cnpj": False, "inactive": False, "p_active": 0.9},  # no CPF, no CNPJ
    6: {"cnpj": True, "inactive": False, "p_active": 0.9},  # company account
    7: {"blocked_flag": True, "deleted_flag": False},
}


@dataclass
class _Users:
    ids: np.ndarray
    created: np.ndarray
    deleted: np.ndarray
    inactive: np.ndarray
    p_active: np.ndarray  # chance to be active in a given month
    engagement: np.ndarray  # multiplies how many items an active user touches
    privilege: np.ndarray
    frame: pl.DataFrame


def _users(inst: _Inst, n: int, first_id: int) -> _Users:
    r = inst.rng("users")
    ids = first_id + np.arange(n, dtype=np.int64)
    ws, cs = inst.window_start, inst.current_start

    female = r.random(n) < 0.52
    nf, nm = len(V.FEMALE_FIRST), len(V.MALE_FIRST)
    first_vocab = V.FEMALE_FIRST + V.MALE_FIRST
    g1 = np.where(female, r.integers(0, nf, n), nf + r.integers(0, nm, n))
    g2 = np.where(female, r.integers(0, nf, n), nf + r.integers(0, nm, n))
    second_given = (r.random(n) < 0.15) & (g1 != g2)
    s1 = r.integers(0, len(V.SURNAMES), n)
    s2 = r.integers(0, len(V.SURNAMES), n)
    two_surnames = (r.random(n) < 0.5) & (s1 != s2)
    particle = np.where(r.random(n) < 0.3, r.integers(0, len(V.PARTICLES), n), -1)

    first_name = pl.concat_str(
        [pl.lit(_pick(first_vocab, g1)), _null_where(_pick(first_vocab, g2), ~second_given)],
        separator=" ",
        ignore_nulls=True,
    )
    last_name = pl.concat_str(
        [
            _null_where(_pick(V.PARTICLES, np.maximum(particle, 0)), particle < 0),
            pl.lit(_pick(V.SURNAMES, s1)),
            _null_where(_pick(V.SURNAMES, s2), ~two_surnames),
        ],
        separator=" ",
        ignore_nulls=True,
    )
    slug_first = [V.ascii_slug(x) for x in first_vocab]
    slug_last = [V.ascii_slug(x, "") for x in V.SURNAMES]
    domains = V.EMAIL_DOMAINS + [f"{inst.subdomain}.edu.br"]
    dom = np.where(r.random(n) < 0.25, len(domains) - 1, r.integers(0, len(domains) - 1, n))
    email = pl.concat_str(
        [
            pl.lit(_pick(slug_first, g1)),
            pl.lit("."),
            pl.lit(_pick(slug_last, np.where(two_surnames, s2, s1))),
            pl.lit(pl.Series(ids).cast(pl.String)),
            pl.lit("@"),
            pl.lit(_pick(domains, dom)),
        ]
    )

    u = r.random(n)
    privilege = np.where(u < 0.03, 2, np.where(u < 0.13, 3, 4)).astype(np.int32)
    created = np.where(r.random(n) < 0.8, _uniform(r, ws - 3 * YEAR, ws, n), _uniform(r, ws, cs - DAY, n))
    inactive = r.random(n) < 0.08
    cnpj = r.random(n) < 0.03
    cpf_null = (r.random(n) < 0.12) | (cnpj & (r.random(n) < 0.5))
    blocked_flag = r.random(n) < 0.03
    deleted_flag = r.random(n) < 0.04
    p_active = (0.25 + 0.7 * r.beta(2, 2, n)) * np.where(privilege == 4, 1.0, 0.5)
    engagement = r.lognormal(0.0, 0.5, n)
    engagement /= engagement.mean()

    arrays: dict[str, np.ndarray] = {
        "privilege": privilege,
        "inactive": inactive,
        "cnpj": cnpj,
        "cpf_null": cpf_null,
        "blocked_flag": blocked_flag,
        "deleted_flag": deleted_flag,
        "p_active": p_active,
        "created": created,
    }
    for i, forced in FORCED_USERS.items():
        if i < n:
            for key, value in forced.items():
                arrays[key][i] = value if key != "created" else ws + value - r.integers(0, DAY)

    lo = np.maximum(created + DAY, ws + 30 * DAY)
    can_delete = deleted_flag & (lo < cs - DAY)
    deleted = np.where(can_delete, _uniform(r, lo, np.maximum(lo + 1, cs - DAY), n), NEVER)
    if n > 4:  # user 4: deleted in the middle of the month before last, after months of activity
        deleted[4] = (inst.starts[-3] + inst.ends[-3]) // 2 + r.integers(0, 6 * 3600)
    blo = np.maximum(created, ws)
    blocked = np.where(blocked_flag & (blo < cs), _uniform(r, blo, np.maximum(blo + 1, cs), n), NEVER)
    blocked = np.where(blocked >= deleted, NEVER, blocked)

    # Registration numbers from the customer's own system: unique (7919 is coprime to 9e7), 30% missing.
    ext = np.where(r.random(n) < 0.7, 10_000_000 + ids * 7919 % 90_000_000, -1)
    frame = _frame(
        {
            "id": ids,
            "institution_id": np.full(n, inst.id, np.int64),
            "uuid": _uuids(r, n),
            "external_id": _null_where(pl.lit("MAT-") + pl.lit(pl.Series(ext).cast(pl.String)), ext < 0),
            "first_name": first_name,
            "last_name": last_name,
            "name": pl.concat_str([first_name, last_name], separator=" "),
            "email": email,
            "cpf": _null_where(_cpfs(r, n), cpf_null),
            "cnpj": _null_where(_cnpjs(r, n), ~cnpj),
            "privilege_id": privilege,
            "created_at": created,
            "blocked_at": blocked,
            "deleted_at": deleted,
        }
    )
    return _Users(ids, created, deleted, inactive, p_active, engagement, privilege, frame)


@dataclass
class _Storyboards:
    ids: np.ndarray
    created: np.ndarray
    deleted: np.ndarray
    n_stories: np.ndarray
    first_story: np.ndarray
    weight: np.ndarray
    frame: pl.DataFrame
    stories: pl.DataFrame


def _storyboards(inst: _Inst, n: int, first_id: int, first_story_id: int) -> _Storyboards:
    r = inst.rng("storyboards")
    ws, cs = inst.window_start, inst.current_start
    ids = first_id + np.arange(n, dtype=np.int64)
    n_stories = np.where(r.random(n) < 0.12, 1, r.integers(2, 9, n)).astype(np.int64)
    n_stories[0] = 5
    if n > 1:
        n_stories[1] = 1  # a single-story storyboard in every institution
    created = np.where(r.random(n) < 0.7, _uniform(r, ws - 2 * YEAR, ws, n), _uniform(r, ws, cs - 20 * DAY, n))
    created[: min(n, 2)] = ws - 30 * DAY - r.integers(0, DAY, min(n, 2))
    del_flag = r.random(n) < 0.08
    lo = created + DAY
    deleted = np.where(del_flag & (lo < cs), _uniform(r, lo, np.maximum(lo + 1, cs), n), NEVER)
    if n >= 4:  # deleted in the middle of the window, after months of views
        created[-1] = ws - 10 * DAY - r.integers(0, DAY)
        deleted[-1] = (inst.starts[7] + inst.ends[7]) // 2 + r.integers(0, 6 * 3600)
    topics = r.permutation(len(V.STORYBOARD_TOPICS))
    k = np.arange(n)
    title = pl.concat_str(
        [
            pl.lit(_pick(V.STORYBOARD_TOPICS, topics[k % len(topics)])),
            _null_where(pl.lit(" — Parte ") + pl.lit(pl.Series(k // len(topics) + 1).cast(pl.String)), k < len(topics)),
        ],
        ignore_nulls=True,
    )
    weight = r.lognormal(0.0, 0.6, n)
    weight /= weight.mean()
    first_story = first_story_id + np.concatenate([[0], np.cumsum(n_stories)[:-1]])
    total = int(n_stories.sum())
    owner = np.repeat(np.arange(n), n_stories)
    frame = _frame(
        {
            "id": ids,
            "institution_id": np.full(n, inst.id, np.int64),
            "title": title,
            "created_at": created,
            "deleted_at": deleted,
        }
    )
    stories = pl.DataFrame(
        {
            "id": first_story_id + np.arange(total, dtype=np.int64),
            "institution_id": np.full(total, inst.id, np.int64),
            "storyboard_id": ids[owner],
            "position": (np.arange(total) - np.repeat(first_story - first_story_id, n_stories) + 1).astype(np.int32),
        }
    )
    return _Storyboards(ids, created, deleted, n_stories, first_story, weight, frame, stories)


def _month_users(r: np.random.Generator, users: _Users, s: int, e: int, *, everyone: bool = False) -> np.ndarray:
    """Local indices of users active in [s, e): existing, not deleted, not 'no activity', drawn by propensity."""
    ok = ~users.inactive & (users.created < e) & (users.deleted > s)
    if everyone:
        return np.nonzero(ok & (users.created < s) & (users.deleted >= e))[0]
    return np.nonzero(ok & (r.random(len(ok)) < users.p_active))[0]


def _story_activity(inst: _Inst, scale: Scale, users: _Users, sb: _Storyboards) -> tuple[pl.DataFrame, pl.DataFrame]:
    """story_views and storyboard_reactions of one institution, month by month."""
    r = inst.rng("story_activity")
    p_all, p_review, p_react = 0.45, 0.15, 0.3
    views: list[tuple[np.ndarray, ...]] = []
    reacts: list[tuple[np.ndarray, ...]] = []
    for m in range(MONTHS):
        s, e = int(inst.starts[m]), int(inst.ends[m])
        campaign = inst.big and m == LAST_FULL_MONTH
        ui = _month_users(r, users, s, e, everyone=campaign)
        avail = (sb.created < e) & (sb.deleted > s)
        if campaign:
            avail &= (sb.created < s) & (sb.deleted >= e)
        si = np.nonzero(avail)[0]
        if len(ui) == 0 or len(si) == 0:
            continue
        if campaign:
            prob: np.ndarray | float = CAMPAIGN_DENSITY
        else:
            nbar = sb.n_stories[si].mean()
            views_per_pair = (p_all * nbar + (1 - p_all) * (nbar + 1) / 2) * (1 + p_review)
            base = scale.story_views_per_user_month / views_per_pair / len(si)
            prob = np.minimum(0.95, base * users.engagement[ui][:, None] * sb.weight[si][None, :])
        draw = r.random((len(ui), len(si)), dtype=np.float32)
        viewed = draw < prob
        react_only = (r.random((len(ui), len(si)), dtype=np.float32) < np.multiply(prob, 0.08)) & ~viewed

        # -- views: each pair views its first k stories in order, some stories again later
        pu, ps = np.nonzero(viewed)
        u, b = ui[pu], si[ps]
        lo = np.maximum.reduce([np.full(len(u), s), users.created[u], sb.created[b]])
        hi = np.minimum.reduce([np.full(len(u), e), users.deleted[u], sb.deleted[b]])
        keep = hi > lo + 3600
        u, b, lo, hi = u[keep], b[keep], lo[keep], hi[keep]
        npairs = len(u)
        t0 = _uniform(r, lo, hi - 1800, npairs)
        nst = sb.n_stories[b]
        k = np.where(r.random(npairs) < p_all, nst, 1 + (r.random(npairs) * nst).astype(np.int64))
        gap = r.integers(15, 240, npairs)
        row_pair = np.repeat(np.arange(npairs), k)
        pos = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        t = t0[row_pair] + pos * gap[row_pair] + r.integers(0, 10, len(pos))
        again = r.random(len(pos)) < p_review
        row_pair = np.concatenate([row_pair, row_pair[again]])
        pos = np.concatenate([pos, pos[again]])
        t = np.concatenate([t, t[again] + r.integers(600, 10 * DAY, int(again.sum()))])
        vu, vb = u[row_pair], b[row_pair]
        ok = (t < users.deleted[vu]) & (t < sb.deleted[vb]) & (t <= inst.now)
        views.append((users.ids[vu[ok]], sb.ids[vb[ok]], sb.first_story[vb[ok]] + pos[ok], t[ok]))

        # -- reactions on viewed pairs (some change their mind), and reactions without any view
        react = r.random(npairs) < p_react
        ru, rb = u[react], b[react]
        rt = t0[react] + (r.random(len(ru)) * (k[react] * gap[react] + 3600)).astype(np.int64)
        like = r.random(len(ru)) < 0.8
        flip = r.random(len(ru)) < 0.05
        ru = np.concatenate([ru, ru[flip]])
        rb = np.concatenate([rb, rb[flip]])
        rt = np.concatenate([rt, rt[flip] + r.integers(3600, 3 * DAY, int(flip.sum()))])
        like = np.concatenate([like, ~like[flip]])
        qu, qs = np.nonzero(react_only)
        ou, ob = ui[qu], si[qs]
        lo = np.maximum.reduce([np.full(len(ou), s), users.created[ou], sb.created[ob]])
        hi = np.minimum.reduce([np.full(len(ou), e), users.deleted[ou], sb.deleted[ob]])
        fine = hi > lo + 60
        ou, ob, lo, hi = ou[fine], ob[fine], lo[fine], hi[fine]
        ru = np.concatenate([ru, ou])
        rb = np.concatenate([rb, ob])
        rt = np.concatenate([rt, _uniform(r, lo, hi, len(ou))])
        like = np.concatenate([like, r.random(len(ou)) < 0.7])
        ok = (rt < users.deleted[ru]) & (rt < sb.deleted[rb]) & (rt <= inst.now)
        reacts.append((users.ids[ru[ok]], sb.ids[rb[ok]], like[ok], rt[ok]))

    def cat(parts: list[tuple[np.ndarray, ...]], i: int, dtype: Any = np.int64) -> np.ndarray:
        return np.concatenate([p[i] for p in parts]) if parts else np.empty(0, dtype)

    n_views = len(cat(views, 0))
    view_frame = pl.DataFrame(
        {
            "institution_id": np.full(n_views, inst.id, np.int64),
            "user_id": cat(views, 0),
            "storyboard_id": cat(views, 1),
            "story_id": cat(views, 2),
            "viewed_at": cat(views, 3),
        }
    )
    likes = cat(reacts, 2, bool)
    react_frame = pl.DataFrame(
        {
            "institution_id": np.full(len(likes), inst.id, np.int64),
            "user_id": cat(reacts, 0),
            "storyboard_id": cat(reacts, 1),
            "kind": np.where(likes, "like", "dislike"),
            "reacted_at": cat(reacts, 3),
        }
    )
    return view_frame, react_frame


def _schools_and_courses(inst: _Inst, sizes: _Sizes, users: _Users, ids: dict[str, int]) -> dict[str, pl.DataFrame]:
    """schools, courses, course_schools, course_views and enrollments of one institution."""
    r = inst.rng("courses")
    ws, cs = inst.window_start, inst.current_start
    ns, nc = sizes.schools, sizes.courses
    school_vocab = [f"{p} {q}" for p in V.SCHOOL_PREFIXES for q in V.SCHOOL_PATRONS]
    pick = r.choice(len(school_vocab), size=min(ns, len(school_vocab)), replace=False)
    ns = len(pick)
    school_ids = ids["schools"] + np.arange(ns, dtype=np.int64)
    schools = pl.DataFrame(
        {
            "id": school_ids,
            "institution_id": np.full(ns, inst.id, np.int64),
            "name": _pick(school_vocab, pick),
        }
    )

    course_ids = ids["courses"] + np.arange(nc, dtype=np.int64)
    published = r.random(nc) < 0.75
    published[0], published[1] = True, False  # at least one draft
    created = _uniform(r, ws - 2 * YEAR, cs - 10 * DAY, nc)
    pub_at = np.where(published, created + (r.random(nc) * (cs - created)).astype(np.int64), NEVER)
    title = pl.concat_str(
        [
            pl.lit(_pick(V.COURSE_TOPICS, r.integers(0, len(V.COURSE_TOPICS), nc))),
            pl.lit(" — "),
            pl.lit(_pick(V.COURSE_LEVELS, r.integers(0, len(V.COURSE_LEVELS), nc))),
        ]
    )
    courses = _frame(
        {
            "id": course_ids,
            "institution_id": np.full(nc, inst.id, np.int64),
            "title": title,
            "status": published.astype(np.int32),
            "published_at": pub_at,
            "created_at": created,
        }
    )

    u = r.random(nc)
    n_links = np.where(u < 0.12, 0, np.where(u < 0.7, 1, r.integers(2, 4, nc)))
    n_links[:3] = [1, 0, min(3, ns)][: min(3, nc)]  # one school / no school / several schools
    rows, items = _distinct_choice(r, n_links, ns)
    course_schools = pl.DataFrame(
        {
            "institution_id": np.full(len(rows), inst.id, np.int64),
            "course_id": course_ids[rows],
            "school_id": school_ids[items],
        }
    )

    weight = r.lognormal(0.0, 0.7, nc)
    pub_idx = np.nonzero(published)[0]
    cv: list[tuple[np.ndarray, ...]] = []
    for m in range(MONTHS):
        s, e = int(inst.starts[m]), int(inst.ends[m])
        ui = _month_users(r, users, s, e)
        ci = pub_idx[pub_at[pub_idx] < e]
        if len(ui) == 0 or len(ci) == 0:
            continue
        prob = np.minimum(0.9, 1.2 / len(ci) * users.engagement[ui][:, None] * weight[ci][None, :] / weight[ci].mean())
        pu, pc = np.nonzero(r.random((len(ui), len(ci)), dtype=np.float32) < prob)
        uu, cc = ui[pu], ci[pc]
        lo = np.maximum.reduce([np.full(len(uu), s), users.created[uu], pub_at[cc]])
        hi = np.minimum(e, users.deleted[uu])
        keep = hi > lo + 60
        uu, cc, lo, hi = uu[keep], cc[keep], lo[keep], hi[keep]
        k = r.geometric(0.55, len(uu))
        rep = np.repeat(np.arange(len(uu)), k)
        t = _uniform(r, lo[rep], hi[rep], len(rep))
        ok = t <= inst.now
        cv.append((course_ids[cc[rep][ok]], users.ids[uu[rep][ok]], t[ok]))
    n_cv = sum(len(p[0]) for p in cv)
    course_views = pl.DataFrame(
        {
            "institution_id": np.full(n_cv, inst.id, np.int64),
            "course_id": np.concatenate([p[0] for p in cv]) if cv else np.empty(0, np.int64),
            "user_id": np.concatenate([p[1] for p in cv]) if cv else np.empty(0, np.int64),
            "viewed_at": np.concatenate([p[2] for p in cv]) if cv else np.empty(0, np.int64),
        }
    )

    # Enrollments happen once per (user, course): spread over the window and half a year before it.
    eu = np.nonzero(~users.inactive)[0]
    if len(eu) and len(pub_idx):
        staff = np.where(users.privilege[eu] == 4, 1.0, 0.3)
        prob = np.minimum(0.9, 3.0 / len(pub_idx) * staff[:, None] * weight[pub_idx][None, :] / weight[pub_idx].mean())
        pu, pc = np.nonzero(r.random((len(eu), len(pub_idx)), dtype=np.float32) < prob)
        uu, cc = eu[pu], pub_idx[pc]
        lo = np.maximum.reduce([np.full(len(uu), ws - 180 * DAY), users.created[uu], pub_at[cc]])
        hi = np.minimum(int(inst.ends[-1]), users.deleted[uu])
        keep = hi > lo + 60
        uu, cc, lo, hi = uu[keep], cc[keep], lo[keep], hi[keep]
        enrolled = _uniform(r, lo, hi, len(uu))
        done = enrolled + 3600 + r.exponential(20 * DAY, len(uu)).astype(np.int64)
        done = np.where((r.random(len(uu)) < 0.4) & (done <= inst.now) & (done < users.deleted[uu]), done, NEVER)
        ok = enrolled <= inst.now
        enrollments = pl.DataFrame(
            {
                "institution_id": np.full(int(ok.sum()), inst.id, np.int64),
                "course_id": course_ids[cc[ok]],
                "user_id": users.ids[uu[ok]],
                "enrolled_at": enrolled[ok],
                "completed_at": done[ok],
            }
        )
    else:
        enrollments = pl.DataFrame(
            schema={
                "institution_id": pl.Int64,
                "course_id": pl.Int64,
                "user_id": pl.Int64,
                "enrolled_at": pl.Int64,
                "completed_at": pl.Int64,
            }
        )
    return {
        "schools": schools,
        "courses": courses,
        "course_schools": course_schools,
        "course_views": course_views,
        "enrollments": enrollments,
    }


def _library(inst: _Inst, n: int, first_id: int, users: _Users, school_ids: np.ndarray) -> dict[str, pl.DataFrame]:
    """library_contents (every seed-003 field) and their cycle/stage/discipline/school links."""
    r = inst.rng("library")
    ws, cs = inst.window_start, inst.current_start
    ids = first_id + np.arange(n, dtype=np.int64)
    stems = V.library_title_stems()
    title = pl.concat_str(
        [
            pl.lit(_pick(stems, r.integers(0, len(stems), n))),
            pl.lit(" — Unidade "),
            pl.lit(pl.Series(r.integers(1, 31, n)).cast(pl.String)),
        ]
    )
    types = np.array(["text", "video_online", "html5"])
    ti = r.choice(3, size=n, p=[0.45, 0.35, 0.20])
    is_text, is_video, is_html = ti == 0, ti == 1, ti == 2
    staff = np.nonzero(users.privilege <= 3)[0]
    author = users.ids[staff[r.integers(0, len(staff), n)]] if len(staff) else np.full(n, users.ids[0])
    id_s = pl.lit(pl.Series(ids).cast(pl.String))
    base_url = pl.lit(f"{FILES_BASE}/biblioteca/{inst.id}/") + id_s
    youtube = r.random(n) < 0.5
    youtube_url = pl.when(pl.lit(pl.Series(youtube))).then(
        pl.lit("https://www.youtube.com/watch?v=") + pl.lit(_tokens(r, n, 11))
    )
    video_url = youtube_url.otherwise(
        pl.lit("https://vimeo.com/") + pl.lit(pl.Series(r.integers(100_000_000, 999_999_999, n)).cast(pl.String))
    )
    duration = np.where(
        is_video, r.integers(60, 3600, n), np.where(is_html & (r.random(n) < 0.3), r.integers(300, 1800, n), 0)
    )
    diff_i = r.choice(4, size=n, p=[0.3, 0.35, 0.15, 0.2])
    tag_a, tag_b = r.integers(0, len(V.LIBRARY_TAGS), n), r.integers(0, len(V.LIBRARY_TAGS), n)
    n_tags = r.choice(3, size=n, p=[0.4, 0.35, 0.25])
    tags = pl.concat_str(
        [
            pl.lit(_pick(V.LIBRARY_TAGS, tag_a)),
            _null_where(_pick(V.LIBRARY_TAGS, tag_b), (n_tags < 2) | (tag_a == tag_b)),
        ],
        separator=",",
        ignore_nulls=True,
    )
    a1, a2 = r.integers(0, len(V.FEMALE_FIRST), n), r.integers(0, len(V.SURNAMES), n)
    authors = pl.lit("Prof.ª ") + pl.lit(_pick(V.FEMALE_FIRST, a1)) + pl.lit(" ") + pl.lit(_pick(V.SURNAMES, a2))
    created = _uniform(r, ws - 2 * YEAR, cs, n)
    updated = np.where(r.random(n) < 0.4, created, created + (r.random(n) * (cs - created) * 0.3).astype(np.int64))
    deleted = np.where(r.random(n) < 0.05, updated + (r.random(n) * (cs - updated)).astype(np.int64), NEVER)
    booleans = r.random((n, 6)) < np.array([0.1, 0.6, 0.2, 0.1, 0.3, 0.4])
    contents = _frame(
        {
            "id": ids,
            "institution_id": np.full(n, inst.id, np.int64),
            "user_id": author,
            "title": title,
            "description": _null_where(pl.lit("Material de apoio: ") + title.str.to_lowercase(), r.random(n) < 0.2),
            "type": types[ti],
            "monolith_type": np.vectorize(MONOLITH_TYPE.get)(types)[ti].astype(np.int32),
            "status": (r.random(n) < 0.8).astype(np.int32),
            "body": _null_where(
                pl.lit("<p>") + title + pl.lit(": leitura orientada, exemplos e exercícios.</p>"), ~is_text
            ),
            "file_url": pl.when(pl.lit(pl.Series(is_html)))
            .then(base_url + pl.lit("/index.html"))
            .when(pl.lit(pl.Series(is_text & (r.random(n) < 0.2))))
            .then(base_url + pl.lit("/material.pdf"))
            .otherwise(None),
            "video_url": _null_where(video_url, ~is_video),
            "duration": duration.astype(np.int32),
            "thumbnail_url": _null_where(base_url + pl.lit("/thumb.jpg"), r.random(n) >= np.where(is_video, 0.7, 0.3)),
            "catalog_cover_rectangular_url": _null_where(base_url + pl.lit("/capa.jpg"), r.random(n) >= 0.4),
            "difficulty": _null_where(_pick(["easy", "medium", "hard", "medium"], diff_i), diff_i == 3),
            "tags": _null_where(tags, n_tags == 0),
            "source": _null_where(
                _pick(V.LIBRARY_SOURCES, r.integers(0, len(V.LIBRARY_SOURCES), n)), r.random(n) < 0.6
            ),
            "authors": _null_where(authors, r.random(n) < 0.5),
            "disable_player_controls": booleans[:, 0] & is_video,
            "show_in_student_catalog": booleans[:, 1],
            "show_in_visitor_catalog": booleans[:, 2],
            "block_catalog_logged_out": booleans[:, 3],
            "show_course_details": booleans[:, 4],
            "show_in_related_videos": booleans[:, 5] & is_video,
            "video_orientation": _null_where(
                pl.lit(pl.Series(np.where(r.random(n) < 0.8, "landscape", "portrait"))), ~is_video
            ),
            "created_at": created,
            "updated_at": updated,
            "deleted_at": deleted,
        }
    )

    # Links: per content a few distinct refs of each kind. Cycle/stage/discipline ids come from
    # per-institution pools (the warehouse has no cycle tables); school links use real schools.
    parts: list[pl.DataFrame] = []
    pools = {
        "cycle": inst.id * 100 + 1 + np.arange(10, dtype=np.int64),
        "cycle_stage": inst.id * 1000 + 1 + np.arange(30, dtype=np.int64),
        "discipline": inst.id * 100 + 51 + np.arange(15, dtype=np.int64),
        "school": school_ids,
    }
    count_p = {
        "cycle": [0.3, 0.5, 0.2],
        "cycle_stage": [0.5, 0.35, 0.15],
        "discipline": [0.6, 0.3, 0.1],
        "school": [0.6, 0.3, 0.1],
    }
    for kind, pool in pools.items():
        counts = r.choice(3, size=n, p=count_p[kind])
        if kind == "cycle" and n:
            counts[0] = max(counts[0], 1)
        rows, items = _distinct_choice(r, counts, len(pool))
        parts.append(
            pl.DataFrame(
                {
                    "institution_id": np.full(len(rows), inst.id, np.int64),
                    "content_id": ids[rows],
                    "link_type": np.full(len(rows), kind),
                    "ref_id": pool[items],
                }
            )
        )
    return {"library_contents": contents, "library_content_links": pl.concat(parts)}


# ---------------------------------------------------------------- public API
def resolve_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(SCALES)}") from None


def resolve_now(now: datetime | date | None) -> datetime:
    """The generator's clock as naive UTC, whole seconds.

    A date means 00:00 UTC of that day (the warehouse as loaded at midnight);
    None means today's date, so two runs on the same day are identical (the
    wall clock's seconds would reshape the open month: bookings ahead of ``now``
    are created "now"). An aware datetime is converted."""
    if now is None:
        now = datetime.now(UTC).date()
    if not isinstance(now, datetime):
        return datetime(now.year, now.month, now.day)
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    return now.replace(microsecond=0)


#: Institutions generated (and loaded) together. Memory grows with a chunk, not with the scale:
#: ``lxp-reports generate --scale small --institutions 10000`` holds 1,000 institutions' rows at a
#: time. A scale of at most this many institutions is one chunk, exactly the warehouse it always was.
CHUNK_INSTITUTIONS = 1000


def generate_chunks(
    scale: str | Scale,
    seed: int = 42,
    now: datetime | date | None = None,
    *,
    chunk_institutions: int = CHUNK_INSTITUTIONS,
) -> Iterator[dict[str, pl.DataFrame]]:
    """The warehouse as consecutive chunks of institutions (ids ascending), each chunk every table of
    schema.sql in DDL order, sorted as loaded.

    Why chunks: 10,000 ``small`` institutions are ~260M rows, more than one machine's memory if built at
    once. Every table sorts by institution first (``sort_keys``) and ids are assigned in institution
    order, so loading the chunks one after the other gives the same table order as one big sort.
    The core tables do not depend on the chunking (their draws are keyed by institution); the
    Stift-style tables are drawn per chunk (chunk 0 from the same generator as an unchunked scale,
    chunk k from ``[seed, stream, k]``), so a warehouse is determined by (scale, seed, ``now``,
    ``chunk_institutions``), and any scale with at most ``chunk_institutions`` institutions is
    byte-identical to the one ``generate`` always made.
    """
    if chunk_institutions < 1:
        raise ValueError(f"chunk_institutions must be >= 1, got {chunk_institutions}")
    sc = resolve_scale(scale)
    now = resolve_now(now)
    now_s = int(now.replace(tzinfo=UTC).timestamp())
    next_id = {"users": 1, "storyboards": 1, "stories": 1, "schools": 1, "courses": 1, "library_contents": 1}
    stift_ids: dict[str, int] = {}
    rows = _institution_rows(sc)
    for index, offset in enumerate(range(0, len(rows), chunk_institutions)):
        parts: dict[str, list[pl.DataFrame]] = {t: [] for t in CORE_TABLES}
        for iid, name, sub, tz, big in rows[offset : offset + chunk_institutions]:
            starts, ends = local_month_bounds(tz, now)
            inst = _Inst(iid, name, sub, tz, big, seed, starts, ends, now_s)
            sizes = _sizes(sc, inst)
            parts["institutions"].append(
                pl.DataFrame({"id": [iid], "name": [name], "subdomain": [sub], "timezone": [tz]})
            )
            users = _users(inst, sizes.users, next_id["users"])
            sb = _storyboards(inst, sizes.storyboards, next_id["storyboards"], next_id["stories"])
            views, reactions = _story_activity(inst, sc, users, sb)
            course_parts = _schools_and_courses(inst, sizes, users, next_id)
            school_ids = course_parts["schools"]["id"].to_numpy()
            library = _library(inst, sizes.library, next_id["library_contents"], users, school_ids)
            produced = {
                "users": users.frame,
                "storyboards": sb.frame,
                "stories": sb.stories,
                "story_views": views,
                "storyboard_reactions": reactions,
                **course_parts,
                **library,
            }
            for table, frame in produced.items():
                parts[table].append(frame)
            for table in next_id:
                next_id[table] += produced[table].height
        frames = {t: _finish(t, parts[t]) for t in CORE_TABLES}
        del parts
        frames.update(_stift(frames, sc, seed, now, chunk=index, first_ids=stift_ids))
        yield {t: frames[t] for t in table_schemas()}


def generate(scale: str | Scale, seed: int = 42, now: datetime | date | None = None) -> dict[str, pl.DataFrame]:
    """Every table of schema.sql as Polars frames (naive UTC), in DDL order, sorted as loaded.

    ``now``: see ``resolve_now`` (None = 00:00 UTC today). The whole warehouse in memory: fine for
    the scales tests and the demo use; ``generate_warehouse`` streams chunks instead."""
    chunks = list(generate_chunks(scale, seed, now))
    if len(chunks) == 1:
        return chunks[0]
    return {t: pl.concat([c[t] for c in chunks]) for t in table_schemas()}


def _stift(
    core: dict[str, pl.DataFrame], scale: Scale, seed: int, now: datetime, *, chunk: int, first_ids: dict[str, int]
) -> dict[str, pl.DataFrame]:
    """The Stift-style tables of one chunk (generated by a sibling module from the chunk's core frames).

    ``first_ids`` carries the next free integer id of each such table from chunk to chunk (updated here)."""
    try:
        from orchestration.warehouse.generate_stift import INTEGER_ID_TABLES, generate_stift
    except ModuleNotFoundError as exc:  # only while the sibling module does not exist
        if exc.name != "orchestration.warehouse.generate_stift":
            raise
        return {t: empty_frame(t) for t in STIFT_TABLES}
    produced = generate_stift(core, scale, seed, now, chunk=chunk, first_ids=first_ids)
    for table in INTEGER_ID_TABLES:
        ids = produced[table]["id"]
        if ids.len():
            first_ids[table] = int(ids.max()) + 1  # type: ignore[arg-type]  # an Int64 column's max is an int
    return {
        t: conform(t, produced[t]).sort(sort_keys(t), maintain_order=True) if t in produced else empty_frame(t)
        for t in STIFT_TABLES
    }


def generate_warehouse(
    scale: str | Scale, seed: int, out: str, *, now: datetime | date | None = None
) -> dict[str, int]:
    """Generate and load in one go (``lxp-reports generate``); returns row counts per table.

    ``out``: a DuckDB file path (or ``duckdb:///path``) or a ``postgresql://`` URL (the CLI's
    default is the configured warehouse, ``Settings.warehouse``). Chunks of institutions are
    generated and loaded one at a time (``generate_chunks``), so memory does not grow with the scale.
    """
    from orchestration.warehouse.load import load_chunks

    counts = dict.fromkeys(table_schemas(), 0)

    def counted() -> Iterator[dict[str, pl.DataFrame]]:
        for frames in generate_chunks(scale, seed, now):
            for table, frame in frames.items():
                counts[table] += frame.height
            yield frames

    load_chunks(counted(), out)
    return counts


def with_institutions(scale: str | Scale, institutions: int) -> Scale:
    """``scale``'s per-institution sizes for ``institutions`` institutions (ids 1..N;
    with a big institution, it is still the last id)."""
    if institutions < 1:
        raise ValueError(f"institutions must be >= 1, got {institutions}")
    sc = resolve_scale(scale)
    return replace(sc, name=f"{sc.name}x{institutions}", institutions=institutions)


def institutions_frame(scale: str | Scale) -> pl.DataFrame:
    """Only the ``institutions`` table of a scale (ids, names, subdomains, zones exactly as
    ``generate`` makes them), for benchmarks that need many institutions but no activity."""
    rows = _institution_rows(resolve_scale(scale))
    frame = pl.DataFrame([r[:4] for r in rows], schema=["id", "name", "subdomain", "timezone"], orient="row")
    return conform("institutions", frame)


def with_big_institution(scale: Scale, users: int, storyboards: int, library_contents: int = 0) -> Scale:
    """A copy of `scale` whose last institution is 'big' (tests use a reduced one)."""
    return replace(
        scale,
        big_institution_users=users,
        big_institution_storyboards=storyboards,
        big_institution_library_contents=library_contents,
    )


__all__ = [
    "CORE_TABLES",
    "STIFT_TABLES",
    "CHUNK_INSTITUTIONS",
    "generate",
    "generate_chunks",
    "generate_warehouse",
    "institutions_frame",
    "local_month_bounds",
    "resolve_now",
    "with_big_institution",
    "with_institutions",
]
