"""Synthetic Stift-style tables (seed 002): groups, disciplines, questions, bookings, NPS.

Called by the core generator with its ``institutions``/``users``/``schools``
frames. Everything is drawn set-wise with numpy from one seeded generator, so
the same seed gives the same warehouse and a large scale still takes seconds.
Activity covers the 12 months before ``now`` plus the current month (and
bookings up to 30 days ahead, which are pending or queued), and every question
status and booking status of the reports is reachable: answered, replied,
closed, in progress and waiting questions, anonymous ones; present, no-show,
student cancellations on both sides of the notice limit, teacher/admin
cancellations, pending, queued, left-queue and not-realized bookings.
Students without a group have no activity; deleted users act only before their
deletion.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from orchestration.warehouse.scales import Scale
from orchestration.warehouse.tables import conform

QUESTIONS_PER_STUDENT_MONTH = 1.2
BOOKINGS_PER_STUDENT_MONTH = 0.7
NPS_PER_STUDENT_MONTH = 0.12
INACTIVE_STUDENT_SHARE = 0.25

#: Tables with integer ids numbered by this module (the others are UUIDs or have no id).
INTEGER_ID_TABLES = ("disciplines", "subjects", "teacher_schedules", "booking_rooms", "nps_answers")

US = 1_000_000
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR

CATALOG: list[tuple[str, list[str]]] = [
    ("Matemática", ["Álgebra", "Aritmética", "Análise combinatória", "Geometria", "Trigonometria", "Funções"]),
    ("Física", ["Cinemática", "Dinâmica", "Óptica", "Eletricidade", "Termologia"]),
    ("Química", ["Estequiometria", "Química orgânica", "Soluções", "Ligações químicas"]),
    ("Biologia", ["Genética", "Ecologia", "Citologia", "Evolução"]),
    ("Língua Portuguesa", ["Gramática", "Interpretação de texto", "Redação", "Literatura"]),
    ("História", ["História do Brasil", "Idade Média", "Revolução Industrial"]),
    ("Geografia", ["Cartografia", "Geopolítica", "Climatologia"]),
    ("Inglês", ["Tempos verbais", "Vocabulário", "Compreensão de texto"]),
]
GROUP_NAMES = [
    "1º ano A",
    "1º ano B",
    "2º ano A",
    "2º ano B",
    "3º ano A",
    "3º ano B",
    "Pré-vestibular Manhã",
    "Pré-vestibular Noite",
    "Turma de Reforço",
    "Intensivo ENEM",
]
ROOMS: list[tuple[str, str]] = [
    ("Sala 101", "Presencial"),
    ("Sala Virtual 1", "Online"),
    ("Laboratório de Ciências", "Presencial"),
    ("Sala Virtual 2", "Online"),
    ("Biblioteca - Estudo em grupo", "Presencial"),
    ("Plantão Online", "Online"),
]
# (prefix, suffix) around the subject name; one starts with "=" on purpose (csv/xlsx injection).
QUESTION_TEMPLATES: list[tuple[str, str]] = [
    ("Não entendi como resolver esta questão de ", ". Podem me ajudar?"),
    ("Qual a diferença entre os conceitos de ", " vistos na aula?"),
    ("Poderia explicar de novo o exercício 3 de ", "?"),
    ("Na lista de ", ", por que a alternativa C está errada?"),
    ("=2x+3 quando x=4? Dúvida de ", ""),
    ("Como a matéria de ", " cai no ENEM? Tem alguma dica?"),
]
ANSWERS = [
    "Olá! Vamos por partes: primeiro identifique os dados do enunciado.",
    "Boa pergunta! A diferença está na definição; veja o exemplo resolvido.",
    "Confira a resolução passo a passo no material da aula 4.",
    "Você está quase lá: faltou aplicar a propriedade distributiva.",
]
REPLIES = ["Ainda não entendi o segundo passo.", "Obrigado! E se o valor fosse negativo?", "Pode dar outro exemplo?"]
REPLY_ANSWERS = [
    "Claro! Veja este outro exemplo.",
    "Se for negativo, o sinal se inverte.",
    "Isso mesmo, ótima observação.",
]
RATING_COMMENTS = [
    "Muito clara a explicação!",
    "Ajudou bastante.",
    "Poderia ter mais exemplos.",
    "Não entendi a resposta.",
]
NPS_COMMENTS = [
    "Os professores respondem rápido.",
    "Gostaria de mais horários de plantão.",
    "Ótima plataforma, recomendo!",
    "Às vezes a chamada de vídeo trava.",
    "Atendimento excelente.",
]


# ------------------------------------------------------------------ vectorized helpers


def _uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUID strings (hex of random bytes, dashes placed column-wise)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = np.frombuffer(raw.tobytes().hex().encode("ascii"), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, [i for i in range(36) if i not in (8, 13, 18, 23)]] = hexed
    return out.view("S36").ravel().astype(str).astype(object)


def _pick(rng: np.random.Generator, pool_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each key, the index of a uniformly random pool row with that key (-1 when none).

    ``pool_keys`` must be sorted; this is how per-institution / per-school /
    per-student random choices stay vectorized.
    """
    left = np.searchsorted(pool_keys, keys, "left")
    right = np.searchsorted(pool_keys, keys, "right")
    count = right - left
    idx = left + np.floor(rng.random(len(keys)) * count).astype(np.int64)
    return np.where(count > 0, idx, -1)


def _utc_offset(tz_name: str, when: datetime) -> timedelta:
    """The zone's UTC offset at ``when`` (a ZoneInfo always has one; ``tzinfo.utcoffset`` is typed Optional)."""
    offset = ZoneInfo(tz_name).utcoffset(when)
    if offset is None:
        raise ValueError(f"time zone {tz_name!r} has no UTC offset at {when}")
    return offset


def _take(values: np.ndarray, idx: np.ndarray, missing: object = None) -> np.ndarray:
    """``values[idx]`` as an object array, ``missing`` where ``idx`` is -1."""
    if not len(values):
        return np.full(len(idx), missing, dtype=object)
    out: np.ndarray = np.asarray(values, dtype=object)[np.clip(idx, 0, None)]
    out[idx < 0] = missing
    return out


def _repeat_counts(rng: np.random.Generator, expected: np.ndarray) -> np.ndarray:
    counts: np.ndarray = rng.poisson(np.clip(expected, 0, None))
    return counts


def _daytime(rng: np.random.Generator, instants: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each instant to a plausible local time of day (07:00-23:59) on the same local day."""
    hours = rng.choice(np.arange(7, 24), size=len(instants), p=_HOUR_WEIGHTS)
    local = instants + offsets
    day = np.floor_divide(local, DAY) * DAY
    tod = hours * HOUR + rng.integers(0, HOUR, size=len(instants))
    moved: np.ndarray = day + tod - offsets
    return moved


_HOUR_WEIGHTS = np.array([1, 3, 4, 4, 3, 3, 4, 5, 5, 4, 4, 5, 6, 6, 5, 3, 2], dtype=float)
_HOUR_WEIGHTS /= _HOUR_WEIGHTS.sum()


def _ts(values: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    """int64 microseconds since the epoch -> naive Datetime series (null where not valid)."""
    series = pl.Series(np.asarray(values, dtype=np.int64)).cast(pl.Datetime("us"))
    if valid is not None:
        series = pl.select(pl.when(pl.Series(valid)).then(series)).to_series()
    return series


def _opt(values: np.ndarray, valid: np.ndarray, dtype: pl.DataType) -> pl.Series:
    """``values`` with nulls where not ``valid``, as a typed series."""
    arr = np.asarray(values)
    series = pl.Series(arr.tolist() if arr.dtype == object else arr).cast(dtype)
    return pl.select(pl.when(pl.Series(valid)).then(series)).to_series()


def _micros(dt: datetime) -> int:
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return int((dt - datetime(1970, 1, 1)).total_seconds() * US)


def _window_start(now: datetime) -> datetime:
    """First day of the month 12 months before ``now``'s month, minus a day for timezones west of UTC."""
    year, month = now.year, now.month - 12
    if month <= 0:
        year, month = year - 1, month + 12
    return datetime(year, month, 1) - timedelta(days=1)


# ------------------------------------------------------------------ generator


def generate_stift(
    core: dict[str, pl.DataFrame],
    scale: Scale,
    seed: int,
    now: datetime,
    *,
    chunk: int = 0,
    first_ids: Mapping[str, int] | None = None,
) -> dict[str, pl.DataFrame]:
    """Stift tables for the core's institutions/users/schools, typed exactly as schema.sql.

    ``now`` is the generator's clock (``generate.resolve_now``): every "already
    happened" cut and every "created now" stamp of a future booking uses it,
    never the wall clock, so one (seed, now) gives one warehouse.

    ``chunk``/``first_ids``: the core generator loads big scales in chunks of
    institutions; chunk k > 0 draws from its own generator ``[seed, stream, k]``
    and numbers the integer ids of :data:`INTEGER_ID_TABLES` from ``first_ids``
    (the next free id after the previous chunks). Chunk 0 with no ``first_ids``
    is exactly the unchunked warehouse."""
    del scale  # activity is per student; the scale already sized the user base
    rng = np.random.default_rng([seed, 0x5717F] if chunk == 0 else [seed, 0x5717F, chunk])
    start = {table: (first_ids or {}).get(table, 1) for table in INTEGER_ID_TABLES}

    def ids(table: str, n: int) -> np.ndarray:
        return np.arange(start[table], start[table] + n, dtype=np.int64)

    now_naive = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    t_now = _micros(now_naive)
    t_start = _micros(_window_start(now_naive))

    institutions = core["institutions"].sort("id")
    inst_ids = institutions["id"].to_numpy()
    tz_names = institutions["timezone"].to_list() if "timezone" in institutions.columns else [None] * len(inst_ids)
    # UTC offset of each institution at ``now`` (a fixed offset is enough to put activity at local daytime)
    inst_offsets = np.array(
        [int(_utc_offset(tz or "America/Sao_Paulo", now_naive).total_seconds() * US) for tz in tz_names],
        dtype=np.int64,
    )
    schools = core["schools"].sort("institution_id", "id")
    users = (
        core["users"]
        .sort("institution_id", "id")
        .with_columns(
            created_us=pl.col("created_at").dt.epoch("us"),
            deleted_us=pl.col("deleted_at").dt.epoch("us"),
        )
    )

    def offsets(inst: np.ndarray) -> np.ndarray:
        return inst_offsets[np.searchsorted(inst_ids, inst)] if len(inst_ids) else np.zeros(len(inst), np.int64)

    # ---- disciplines & subjects: the whole catalog in every institution
    n_inst, n_disc = len(inst_ids), len(CATALOG)
    disc_inst = np.repeat(inst_ids, n_disc)
    disc_pos = np.tile(np.arange(n_disc), n_inst)
    disc_ids = ids("disciplines", len(disc_inst))
    disciplines = pl.DataFrame(
        {"id": disc_ids, "institution_id": disc_inst, "name": [CATALOG[p][0] for p in range(n_disc)] * n_inst}
    )
    sub_names = [s for _, subs in CATALOG for s in subs]
    per_disc = np.array([len(subs) for _, subs in CATALOG])
    sub_disc = np.repeat(disc_ids, per_disc[disc_pos])
    subj_inst = np.repeat(disc_inst, per_disc[disc_pos])
    subjects = pl.DataFrame(
        {
            "id": ids("subjects", len(sub_disc)),
            "institution_id": subj_inst,
            "discipline_id": sub_disc,
            "name": sub_names * n_inst,
        }
    )

    # ---- groups: 2-3 per school
    school_ids = schools["id"].to_numpy()
    school_inst = schools["institution_id"].to_numpy()
    per_school = rng.integers(2, 4, size=len(school_ids))
    g_school = np.repeat(school_ids, per_school)
    g_inst = np.repeat(school_inst, per_school)
    g_rank = np.arange(len(g_school)) - np.repeat(np.cumsum(per_school) - per_school, per_school)
    g_name = np.array(GROUP_NAMES, dtype=object)[(g_rank + np.repeat(school_ids, per_school)) % len(GROUP_NAMES)]
    g_ids = _uuids(rng, len(g_school))
    groups = pl.DataFrame(
        {"id": g_ids, "institution_id": g_inst, "school_id": g_school, "name": g_name},
        schema={"id": pl.String, "institution_id": pl.Int64, "school_id": pl.Int64, "name": pl.String},
    )
    # groups are sorted by institution (schools were), so they are a pool keyed by institution
    g_order = np.argsort(g_inst, kind="stable")
    g_pool_inst = g_inst[g_order]

    # ---- members
    u_id = users["id"].to_numpy()
    u_inst = users["institution_id"].to_numpy()
    u_priv = users["privilege_id"].to_numpy()
    u_created = users["created_us"].to_numpy()
    u_deleted = users["deleted_us"].fill_null(np.iinfo(np.int64).max).to_numpy()

    stud = np.flatnonzero((u_priv == 4) & (rng.random(len(u_id)) < 0.95))
    second = stud[rng.random(len(stud)) < 0.15]
    teach = np.flatnonzero(u_priv == 3)
    teach_rep = np.repeat(teach, rng.integers(1, 4, size=len(teach)))
    admins = np.flatnonzero((u_priv == 2) & (rng.random(len(u_id)) < 0.5))
    m_user_idx = np.concatenate([stud, second, teach_rep, admins])
    m_role = np.repeat(
        np.array(["student", "teacher", "admin"]), [len(stud) + len(second), len(teach_rep), len(admins)]
    )
    m_group = _pick(rng, g_pool_inst, u_inst[m_user_idx])
    keep = m_group >= 0
    m_user_idx, m_role, m_group = m_user_idx[keep], m_role[keep], g_order[m_group[keep]]
    _, first = np.unique(m_group * (len(u_id) + 1) + m_user_idx, return_index=True)  # one row per (group, user)
    first = np.sort(first)
    m_user_idx, m_role, m_group = m_user_idx[first], m_role[first], m_group[first]
    members = pl.DataFrame(
        {
            "institution_id": u_inst[m_user_idx],
            "group_id": pl.Series(g_ids[m_group].tolist(), dtype=pl.String()),
            "user_id": u_id[m_user_idx],
            "role": m_role,
            "joined_at": _ts(
                np.minimum(u_created[m_user_idx] + rng.integers(0, 30 * DAY, size=len(m_user_idx)), t_now)
            ),
        }
    )

    # ---- teacher disciplines: 1-3 per teacher, a pool keyed by institution
    td_teacher = np.repeat(teach, rng.integers(1, 4, size=len(teach)))
    td_disc_pos = rng.integers(0, n_disc, size=len(td_teacher))
    td_inst = u_inst[td_teacher]
    td_disc = disc_ids[np.searchsorted(inst_ids, td_inst) * n_disc + td_disc_pos]
    td = (
        pl.DataFrame({"institution_id": td_inst, "teacher_id": u_id[td_teacher], "discipline_id": td_disc})
        .unique(keep="first", maintain_order=True)
        .sort("institution_id", "teacher_id", "discipline_id")
    )
    td_pool_inst = td["institution_id"].to_numpy()
    td_pool_teacher = td["teacher_id"].to_numpy()
    td_pool_disc = td["discipline_id"].to_numpy()
    teacher_pool = np.sort(teach)  # users sorted by institution, so teach indices are institution-sorted
    subj_pool_disc = subjects["discipline_id"].to_numpy()
    subj_pool_ids = subjects["id"].to_numpy()
    subj_pool_names = np.array(sub_names * n_inst, dtype=object)
    admin_pool = np.flatnonzero(u_priv == 2)

    # student activity spans: members with role student, primary pool by user
    is_student = m_role == "student"
    by_user = np.argsort(u_id[m_user_idx[is_student]], kind="stable")
    smem_user = u_id[m_user_idx[is_student]][by_user]
    smem_gidx = m_group[is_student][by_user]
    active_students = np.flatnonzero(np.isin(u_id, smem_user) & (rng.random(len(u_id)) >= INACTIVE_STUDENT_SHARE))
    lo = np.maximum(u_created[active_students], t_start)
    hi_past = np.minimum(u_deleted[active_students], t_now)
    intensity = rng.gamma(2.0, 0.5, size=len(active_students))

    def events(rate: float, future_days: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(user index, instant) of Poisson-many events per active student, at daytime."""
        hi = np.where(u_deleted[active_students] < t_now, hi_past, t_now + future_days * DAY)
        months = np.clip(hi - lo, 0, None) / (30 * DAY)
        n = _repeat_counts(rng, rate * months * intensity)
        who = np.repeat(active_students, n)
        a, b = np.repeat(lo, n), np.repeat(hi, n)
        at = a + (rng.random(len(who)) * (b - a)).astype(np.int64)
        at = np.clip(_daytime(rng, at, offsets(u_inst[who])), a, np.maximum(a, b - 1))
        return who, at

    # ---- questions
    qw, q_created = events(QUESTIONS_PER_STUDENT_MONTH)
    nq = len(qw)
    q_inst = u_inst[qw]
    q_group = g_ids[smem_gidx[_pick(rng, smem_user, u_id[qw])]]
    q_td = _pick(rng, td_pool_inst, q_inst)
    no_disc = (q_td < 0) | (rng.random(nq) < 0.04)
    q_disc = np.where(no_disc, -1, _take(td_pool_disc, q_td, -1).astype(np.int64))
    q_sub_idx = np.where(no_disc | (rng.random(nq) < 0.05), -1, _pick(rng, subj_pool_disc, q_disc))
    q_teacher_td = _take(td_pool_teacher, q_td, -1).astype(np.int64)
    t_pick = _pick(rng, u_inst[teacher_pool], q_inst) if len(teacher_pool) else np.full(nq, -1)
    q_teacher_any = _take(u_id[teacher_pool], t_pick, -1).astype(np.int64)
    q_teacher = np.where(no_disc, q_teacher_any, q_teacher_td)
    outcome = rng.choice(4, size=nq, p=[0.68, 0.07, 0.10, 0.15])  # answered, closed, in progress, waiting
    q_assigned = q_created + rng.exponential(40 * MINUTE, nq).astype(np.int64)
    q_answered = q_assigned + rng.lognormal(np.log(6 * HOUR), 1.2, nq).astype(np.int64)
    q_closed = q_created + rng.exponential(2 * DAY, nq).astype(np.int64)
    has_teacher = (q_teacher >= 0) & (outcome != 3) & (q_assigned <= t_now)
    answered = has_teacher & (outcome == 0) & (q_answered <= t_now)
    closed = (outcome == 1) & (q_closed <= t_now) & ~answered
    has_teacher &= ~(closed & (rng.random(nq) < 0.5))
    replied = answered & (rng.random(nq) < 0.2)
    reply_answered = replied & (rng.random(nq) < 0.7)
    rated = answered & (rng.random(nq) < 0.55)
    understood_given = answered & (rng.random(nq) < 0.6)
    commented = rated & (rng.random(nq) < 0.3)
    subject_text = np.where(q_sub_idx >= 0, _take(subj_pool_names, q_sub_idx, ""), "conteúdo da aula")
    tpl = rng.integers(0, len(QUESTION_TEMPLATES), size=nq)
    prefixes = np.array([p for p, _ in QUESTION_TEMPLATES], dtype=object)[tpl]
    suffixes = np.array([s for _, s in QUESTION_TEMPLATES], dtype=object)[tpl]
    questions = pl.DataFrame(
        {
            "id": _uuids(rng, nq),
            "institution_id": q_inst,
            "group_id": q_group,
            "student_id": u_id[qw],
            "teacher_id": _opt(q_teacher, has_teacher, pl.Int64()),
            "discipline_id": _opt(q_disc, q_disc >= 0, pl.Int64()),
            "subject_id": _opt(_take(subj_pool_ids, q_sub_idx, 0), q_sub_idx >= 0, pl.Int64()),
            "description": prefixes + subject_text + suffixes,
            "anonymous": rng.random(nq) < 0.1,
            "created_at": _ts(q_created),
            "assigned_at": _ts(q_assigned, has_teacher),
            "answered_at": _ts(q_answered, answered),
            "closed_at": _ts(q_closed, closed),
            "answer_description": _opt(rng.choice(np.array(ANSWERS, object), nq), answered, pl.String()),
            "reply_description": _opt(rng.choice(np.array(REPLIES, object), nq), replied, pl.String()),
            "reply_answer_description": _opt(
                rng.choice(np.array(REPLY_ANSWERS, object), nq), reply_answered, pl.String()
            ),
            "answer_rating": _opt(
                rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], nq, p=[0.05, 0.05, 0.15, 0.3, 0.45]), rated, pl.Float64()
            ),
            "answer_understood": _opt(rng.random(nq) < 0.8, understood_given, pl.Boolean()),
            "answer_comment": _opt(rng.choice(np.array(RATING_COMMENTS, object), nq), commented, pl.String()),
            "has_seen_answer": answered & (rng.random(nq) < 0.85),
        },
        schema_overrides={"id": pl.String, "group_id": pl.String, "description": pl.String},
    )

    # ---- teacher schedules: 1-4 weekly slots per (teacher, discipline)
    ts_row = np.repeat(np.arange(td.height), rng.integers(1, 5, size=td.height))
    ts_n = len(ts_row)
    ts_start = 7 * 60 + 30 * rng.integers(0, 27, size=ts_n)
    ts_end = np.minimum(ts_start + 30 * rng.integers(1, 7, size=ts_n), 23 * 60)
    ts_school = _pick(rng, school_inst, td_pool_inst[ts_row])
    ok = ts_school >= 0
    teacher_schedules = pl.DataFrame(
        {
            "id": ids("teacher_schedules", int(ok.sum())),
            "institution_id": td_pool_inst[ts_row][ok],
            "school_id": school_ids[ts_school[ok]],
            "teacher_id": td_pool_teacher[ts_row][ok],
            "discipline_id": td_pool_disc[ts_row][ok],
            "weekday": rng.integers(0, 6, size=ts_n)[ok].astype(np.int32),
            "start_minute": ts_start[ok].astype(np.int32),
            "end_minute": ts_end[ok].astype(np.int32),
        }
    )

    # ---- booking rooms: 2-3 per school
    per_school_rooms = rng.integers(2, 4, size=len(school_ids))
    r_school = np.repeat(school_ids, per_school_rooms)
    r_rank = np.arange(len(r_school)) - np.repeat(np.cumsum(per_school_rooms) - per_school_rooms, per_school_rooms)
    r_kind = (r_rank + np.repeat(school_ids, per_school_rooms)) % len(ROOMS)
    booking_rooms = pl.DataFrame(
        {
            "id": ids("booking_rooms", len(r_school)),
            "institution_id": np.repeat(school_inst, per_school_rooms),
            "school_id": r_school,
            "name": np.array([n for n, _ in ROOMS], dtype=object)[r_kind],
            "modal": np.array([m for _, m in ROOMS], dtype=object)[r_kind],
        },
        schema_overrides={"name": pl.String, "modal": pl.String},
    ).sort("school_id", "id")
    room_pool_school = booking_rooms["school_id"].to_numpy()
    room_pool_ids = booking_rooms["id"].to_numpy()

    # ---- bookings
    bw, b_sched = events(BOOKINGS_PER_STUDENT_MONTH, future_days=30)
    nb = len(bw)
    b_sched = (b_sched // (30 * MINUTE)) * (30 * MINUTE)
    b_inst = u_inst[bw]
    b_gidx = smem_gidx[_pick(rng, smem_user, u_id[bw])]
    b_gidx[rng.random(nb) < 0.1] = -1
    b_group = _take(g_ids, b_gidx)
    fallback_school = _take(school_ids, _pick(rng, school_inst, b_inst), -1).astype(np.int64)
    b_school = np.where(b_gidx >= 0, g_school[np.clip(b_gidx, 0, None)], fallback_school)
    queue = rng.random(nb) < 0.15
    past = b_sched < t_now
    lead = np.where(queue, rng.integers(1, 120, nb) * MINUTE, rng.integers(60, 14 * 24 * 60, nb) * MINUTE)
    b_created = np.minimum(np.maximum(b_sched - lead, u_created[bw]), t_now - MINUTE)
    keep = (b_school >= 0) & (b_created <= b_sched)
    b_td = _pick(rng, td_pool_inst, b_inst)
    b_teacher = _take(td_pool_teacher, b_td, -1).astype(np.int64)
    b_disc = _take(td_pool_disc, b_td, -1).astype(np.int64)
    b_room = _take(room_pool_ids, _pick(rng, room_pool_school, b_school), -1).astype(np.int64)
    r = rng.random(nb)
    # non-queue outcomes
    present = ~queue & past & (r < 0.6) & (b_teacher >= 0)
    student_cancel = ~queue & ((past & (r >= 0.6) & (r < 0.77)) | (~past & (r < 0.12)))
    other_cancel = ~queue & ((past & (r >= 0.77) & (r < 0.85)) | (~past & (r >= 0.12) & (r < 0.2)))
    # queue outcomes
    q_present = queue & past & (r < 0.5) & (b_teacher >= 0)
    q_left = queue & ((past & (r >= 0.5) & (r < 0.75)) | (~past & (r < 0.2)))
    q_cancel = queue & past & (r >= 0.95)
    met = present | q_present
    started = b_sched + rng.integers(-5, 15, nb) * MINUTE
    met &= started <= t_now
    ended = started + rng.integers(15, 61, nb) * MINUTE
    ended_ok = met & (ended <= t_now)
    cancelled = student_cancel | other_cancel | q_cancel
    cancel_at = np.clip(b_sched - rng.integers(0, 72 * 60, nb) * MINUTE, b_created, t_now)
    by_student = student_cancel | q_cancel
    admin_idx = _pick(rng, u_inst[admin_pool], b_inst) if len(admin_pool) else np.full(nb, -1)
    admin_id = _take(u_id[admin_pool], admin_idx, -1).astype(np.int64)
    by_admin = other_cancel & ((rng.random(nb) < 0.4) | (b_teacher < 0)) & (admin_id >= 0)
    cancel_role = np.where(by_student, "student", np.where(by_admin, "admin", "teacher"))
    cancel_by = np.where(by_student, u_id[bw], np.where(by_admin, admin_id, b_teacher))
    cancelled &= cancel_by >= 0
    joined = queue
    left_at = np.minimum(b_created + rng.integers(1, 40, nb) * MINUTE, t_now)
    teacher_shown = (~queue & (b_teacher >= 0)) | q_present

    def chance(p: float) -> np.ndarray:
        return rng.random(nb) < p

    ratings = np.round(rng.uniform(3.0, 5.0, nb), 1)
    bookings = pl.DataFrame(
        {
            "id": _uuids(rng, nb),
            "institution_id": b_inst,
            "school_id": b_school,
            "group_id": pl.Series(b_group.tolist(), dtype=pl.String()),
            "student_id": u_id[bw],
            "teacher_id": _opt(b_teacher, teacher_shown & (b_teacher >= 0), pl.Int64()),
            "discipline_id": _opt(b_disc, b_disc >= 0, pl.Int64()),
            "booking_room_id": _opt(b_room, ~queue & (b_room >= 0), pl.Int64()),
            "is_queue": queue,
            "created_at": _ts(b_created),
            "scheduled_for": _ts(b_sched),
            "meeting_started_at": _ts(started, met),
            "meeting_ended_at": _ts(ended, ended_ok),
            "cancelled_at": _ts(cancel_at, cancelled),
            "cancelled_by_id": _opt(cancel_by, cancelled, pl.Int64()),
            "cancelled_by_role": _opt(cancel_role, cancelled, pl.String()),
            "queue_joined_at": _ts(b_created, joined),
            "queue_left_at": _ts(left_at, q_left),
            "rating_by_student": _opt(ratings, ended_ok & chance(0.6), pl.Float64()),
            "rating_by_teacher": _opt(np.round(rng.uniform(3.0, 5.0, nb), 1), ended_ok & chance(0.4), pl.Float64()),
            "call_quality_rating_by_student": _opt(
                np.round(rng.uniform(2.0, 5.0, nb), 1), ended_ok & chance(0.5), pl.Float64()
            ),
            "call_quality_rating_by_teacher": _opt(
                np.round(rng.uniform(2.0, 5.0, nb), 1), ended_ok & chance(0.4), pl.Float64()
            ),
        }
    ).filter(pl.Series(keep))

    # ---- NPS answers
    nw, n_asked = events(NPS_PER_STUDENT_MONTH)
    nn = len(nw)
    n_answered = n_asked + rng.exponential(1.5 * DAY, nn).astype(np.int64)
    n_ok = n_answered < np.minimum(t_now, u_deleted[nw])
    n_gidx = smem_gidx[_pick(rng, smem_user, u_id[nw])]
    n_gidx[rng.random(nn) < 0.15] = -1
    n_group = _take(g_ids, n_gidx)
    scores = rng.choice(11, size=nn, p=np.array([1, 1, 1, 1, 2, 3, 4, 8, 14, 20, 25]) / 80)
    nps = pl.DataFrame(
        {
            "id": ids("nps_answers", nn),
            "institution_id": u_inst[nw],
            "user_id": u_id[nw],
            "group_id": pl.Series(n_group.tolist(), dtype=pl.String()),
            "score": scores.astype(np.int32),
            "comment": _opt(rng.choice(np.array(NPS_COMMENTS, object), nn), rng.random(nn) < 0.35, pl.String()),
            "asked_at": _ts(n_asked),
            "answered_at": _ts(n_answered),
        }
    ).filter(pl.Series(n_ok))

    frames = {
        "groups": groups,
        "group_members": members,
        "disciplines": disciplines,
        "subjects": subjects,
        "teacher_disciplines": td,
        "questions": questions,
        "teacher_schedules": teacher_schedules,
        "booking_rooms": booking_rooms,
        "bookings": bookings,
        "nps_answers": nps,
    }
    return {name: conform(name, frame) for name, frame in frames.items()}
