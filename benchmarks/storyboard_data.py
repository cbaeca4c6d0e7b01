"""Synthetic frames shaped like the storyboard usage report, for writer benchmarks.

Built with vectorized Polars expressions from a seeded hash so 1M rows take a
second or two and every run (and every child process of the benchmark) writes
byte-identical input. Names carry pt-BR accents so encoding costs are real.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from assets.spec import Column

COLUMNS: tuple[Column, ...] = (
    Column("storyboard", "Storyboard"),
    Column("user_name", "Nome Completo (Usuário)"),
    Column("email", "E-mail"),
    Column("cpf", "CPF"),
    Column("cnpj", "CNPJ"),
    Column("likes", "Like", "int"),
    Column("dislikes", "Dislike", "int"),
    Column("completed", "Completed"),
    Column("views_enrolled", "Views (Enrolled)"),
    Column("updated_at", "Updated", "datetime"),
    Column("started_at", "Data de início", "datetime"),
    Column("finished_at", "Data de Término", "datetime"),
)

_FIRST = [
    ("João", "joao"),
    ("José", "jose"),
    ("Antônio", "antonio"),
    ("Márcia", "marcia"),
    ("Lúcia", "lucia"),
    ("Conceição", "conceicao"),
    ("Ângela", "angela"),
    ("Íris", "iris"),
    ("Sérgio", "sergio"),
    ("Fábio", "fabio"),
    ("Luís", "luis"),
    ("Cláudia", "claudia"),
    ("Débora", "debora"),
    ("Vitória", "vitoria"),
    ("Inês", "ines"),
    ("Otávio", "otavio"),
    ("Maria", "maria"),
    ("Ana", "ana"),
    ("Pedro", "pedro"),
    ("Gabriel", "gabriel"),
]
_LAST = [
    ("Gonçalves", "goncalves"),
    ("Araújo", "araujo"),
    ("Magalhães", "magalhaes"),
    ("Simões", "simoes"),
    ("Sá", "sa"),
    ("Conceição", "conceicao"),
    ("Brandão", "brandao"),
    ("Gusmão", "gusmao"),
    ("Falcão", "falcao"),
    ("Romão", "romao"),
    ("Silva", "silva"),
    ("Souza", "souza"),
    ("Oliveira", "oliveira"),
    ("Pereira", "pereira"),
    ("Lima", "lima"),
    ("Assunção", "assuncao"),
]
_TOPICS = [
    "Segurança no Trabalho",
    "Introdução à Programação",
    "Gestão de Pessoas",
    "Atendimento ao Cliente",
    "Comunicação Não Violenta",
    "Ética e Compliance",
    "Primeiros Socorros",
    "Liderança Situacional",
    "Educação Financeira",
    "Prevenção de Incêndios",
    "Inteligência Emocional",
    "Matemática Básica",
]


def _pick(values: list[str], h: pl.Expr) -> pl.Expr:
    """Vectorized choice from a small list by a hash expression."""
    return pl.lit(pl.Series(values)).gather(h % len(values))


def storyboard_frame(rows: int, seed: int = 7) -> pl.DataFrame:
    """``rows`` rows of the 12 storyboard-usage columns (three datetime, two nullable)."""
    base = datetime(2026, 6, 1)
    month_s = 30 * 86_400
    i = pl.int_range(0, rows, dtype=pl.UInt64)
    h = [i.hash(seed + k) for k in range(8)]
    first, last = h[0] % len(_FIRST), h[1] % len(_LAST)
    total = (h[2] % 8 + 1).cast(pl.Int64)
    viewed = (h[3] % (total.cast(pl.UInt64) + 1)).cast(pl.Int64)
    start = pl.lit(base) + pl.duration(seconds=(h[4] % month_s).cast(pl.Int64))
    updated = start + pl.duration(seconds=(h[5] % 86_400 * 5).cast(pl.Int64))
    cpf = (h[6] % 100_000_000_000).cast(pl.String).str.zfill(11)
    cnpj = (h[7] % 100_000_000_000_000).cast(pl.String).str.zfill(14)
    frame = pl.select(
        storyboard=pl.format("Storyboard {} - {}", (h[2] % 500).cast(pl.String), _pick([t for t in _TOPICS], h[2])),
        user_name=pl.concat_str(
            _pick([f for f, _ in _FIRST], first),
            pl.lit(" "),
            _pick([n for n, _ in _LAST], last),
            pl.lit(" "),
            _pick([n for n, _ in _LAST], h[6]),
        ),
        email=pl.concat_str(
            _pick([a for _, a in _FIRST], first),
            pl.lit("."),
            _pick([a for _, a in _LAST], last),
            (i % 10_000).cast(pl.String),
            pl.lit("@escola.edu.br"),
        ),
        cpf=pl.concat_str(
            cpf.str.slice(0, 3),
            pl.lit("."),
            cpf.str.slice(3, 3),
            pl.lit("."),
            cpf.str.slice(6, 3),
            pl.lit("-"),
            cpf.str.slice(9, 2),
        ),
        cnpj=pl.when(h[7] % 10 < 3).then(
            pl.concat_str(
                cnpj.str.slice(0, 2),
                pl.lit("."),
                cnpj.str.slice(2, 3),
                pl.lit("."),
                cnpj.str.slice(5, 3),
                pl.lit("/"),
                cnpj.str.slice(8, 4),
                pl.lit("-"),
                cnpj.str.slice(12, 2),
            )
        ),
        likes=(h[0] % 3).cast(pl.Int64),
        dislikes=(h[1] % 2).cast(pl.Int64),
        completed=pl.when(viewed == total).then(pl.lit("Sim")).otherwise(pl.lit("Não")),
        views_enrolled=pl.format("{}/{}", viewed, total),
        updated_at=updated,
        started_at=start,
        finished_at=pl.when(viewed == total).then(updated),
    )
    return frame.with_columns(pl.col("updated_at", "started_at", "finished_at").dt.cast_time_unit("us"))
