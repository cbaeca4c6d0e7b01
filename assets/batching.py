"""One extraction for many institutions: a spec query rewritten for a set of institutions, and its result split.

A report's queries are written for one institution (``institution_id = :institution_id``, see
``assets.spec``); a backfill run builds the same report for up to ``LXP_BACKFILL_BATCH_SIZE``
institutions whose month has the same UTC bounds. Running each query once for all of them and
splitting the result in Polars costs a fraction of one query per institution (the per-query cost is
mostly fixed: parse, plan, scan start, result conversion). The rewrite is mechanical so every spec
keeps ONE SQL text, the single-partition one, which the API and the ad-hoc jobs keep running as is:

* every top-level ``SELECT`` (each branch of a top-level ``UNION``) gets its institution as a first
  column, ``BATCH_COLUMN``, taken from its own top-level ``[alias.]institution_id = :institution_id``
  predicate, which becomes ``[alias.]institution_id IN (<ids>)``;
* an ``institution_id = :institution_id`` inside a subquery (the ``users`` lookups: "users referenced by
  the period's facts") becomes ``institution_id IN (<ids>)`` too, uncorrelated, so both engines keep a
  hashed semi-join (a correlated subquery is a per-row SubPlan on PostgreSQL). The only difference to
  the one-institution query: a user of institution A referenced by a fact row of institution B (a
  cross-institution reference, which the data should not hold) lands in A's ``users`` frame, where
  nothing references it. Builders use ``users`` as a lookup by id only, so every file is identical;
* the ids are integer literals (``int()`` of each), so the rewritten text carries no other value and
  both engines push the list down to the scan (DuckDB zone maps, PostgreSQL index scans).

A top-level ``ORDER BY`` stays: ordering the whole result orders each institution's rows the same way,
and ``split`` keeps the order (``maintain_order``). A query the rewrite does not understand (a
top-level SELECT without its institution predicate) raises ``NotBatchable``; callers then run it
per institution.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from assets.spec import BatchBuilder, Builder, ReportRequest
from assets.warehouse.tables import conform

#: The institution column a batched query adds (dropped again by ``split``).
BATCH_COLUMN = "__lxp_institution"

_PREDICATE = re.compile(r"(?:\b([A-Za-z_][A-Za-z0-9_]*)\.)?\binstitution_id\s*=\s*:institution_id\b")
_FROM = re.compile(r"\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+(?:AS\s+)?([A-Za-z_][A-Za-z0-9_]*))?", re.IGNORECASE)
_KEYWORDS = {"where", "join", "left", "right", "inner", "full", "cross", "on", "group", "order", "union", "limit"}
_SELECT = re.compile(r"\bSELECT\b(\s+DISTINCT\b)?", re.IGNORECASE)


class NotBatchable(ValueError):
    """The query has a shape the batch rewrite does not handle."""


def _depths(sql: str) -> list[int]:
    """Parenthesis depth of every character (quoted text counts as its surroundings)."""
    out, depth, quote = [], 0, ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            out.append(depth + 1)
            continue
        out.append(depth)
    return out


def batch_query(sql: str, institution_ids: Iterable[int]) -> str:
    """``sql`` (written for ``:institution_id``) for every institution in ``institution_ids`` at once."""
    ids = sorted({int(i) for i in institution_ids})
    if not ids:
        raise ValueError("no institutions to batch")
    id_list = f"({', '.join(str(i) for i in ids)})"
    depth = _depths(sql)
    selects = [m for m in _SELECT.finditer(sql) if depth[m.start()] == 0]
    if not selects:
        raise NotBatchable("no top-level SELECT")
    bounds = [m.start() for m in selects] + [len(sql)]
    pieces = [sql[: bounds[0]]]
    for n, select in enumerate(selects):
        start, end = bounds[n], bounds[n + 1]
        segment = sql[start:end]
        seg_depth = depth[start:end]
        top = [m for m in _PREDICATE.finditer(segment) if seg_depth[m.start()] == 0]
        if len(top) != 1:
            raise NotBatchable(f"expected one top-level institution_id = :institution_id, found {len(top)}")
        outer = _outer_column(segment, seg_depth, top[0].group(1))
        head_end = select.end() - start

        def rewrite(m: re.Match[str]) -> str:
            return f"{m.group(1)}.institution_id IN {id_list}" if m.group(1) else f"institution_id IN {id_list}"

        body = _PREDICATE.sub(rewrite, segment[head_end:])
        pieces.append(f"{segment[:head_end]} {outer} AS {BATCH_COLUMN},{body}")
    return "".join(pieces)


def _outer_column(segment: str, seg_depth: list[int], alias: str | None) -> str:
    """``<alias or table>.institution_id`` of a top-level SELECT (qualified, so a subquery can correlate)."""
    if alias:
        return f"{alias}.institution_id"
    froms = [m for m in _FROM.finditer(segment) if seg_depth[m.start()] == 0]
    if len(froms) != 1:
        raise NotBatchable("an unqualified institution predicate needs exactly one top-level FROM table")
    table, maybe_alias = froms[0].group(1), froms[0].group(2)
    name = maybe_alias if maybe_alias and maybe_alias.lower() not in _KEYWORDS else table
    return f"{name}.institution_id"


def split_frame(frame: pl.DataFrame, institution_ids: Sequence[int]) -> dict[int, pl.DataFrame]:
    """A frame keyed by ``BATCH_COLUMN`` (a batched query's result, a batch builder's) -> each institution's
    frame without the key (same columns and dtypes, rows in the same order; a zero-row frame where it has none)."""
    keys = frame.get_column(BATCH_COLUMN)
    if len(institution_ids) == 1 and (frame.height == 0 or (keys.n_unique() == 1 and keys[0] == institution_ids[0])):
        return {institution_ids[0]: frame.drop(BATCH_COLUMN)}  # the batch of one (the sync path): no split
    parts = frame.partition_by(BATCH_COLUMN, as_dict=True, maintain_order=True, include_key=False)
    empty = frame.clear().drop(BATCH_COLUMN)
    return {i: parts.get((i,), empty) for i in institution_ids}


def split(frames: Mapping[str, pl.DataFrame], institution_ids: Sequence[int]) -> dict[int, dict[str, pl.DataFrame]]:
    """Batched frames -> each institution's frames, as its own query would have returned them."""
    out: dict[int, dict[str, pl.DataFrame]] = {i: {} for i in institution_ids}
    for name, frame in frames.items():
        for i, part in split_frame(frame, institution_ids).items():
            out[i][name] = part
    return out


# --- building many institutions at once -------------------------------------------------------
#
# Extracting once per chunk left the builders running once per institution: ~40 small Polars
# operations each, at ~0.2 ms of fixed cost apiece, for a small institution's few hundred rows.
# A report that defines ``ReportSpec.build_batch`` builds every institution of a chunk in one pass
# instead: its frames carry ``BATCH_COLUMN`` and every join, group and sort of the builder includes
# it. Its single-institution ``build`` is ``batch_of_one(build_batch)``, the batch-of-one case of the
# same code, so the API's sync and ad-hoc paths run exactly what a backfill runs (one home per rule).
#
# What a batch shares: every ``ReportRequest`` field but the institution's id/name/subdomain, i.e. the
# same period, timezone, ``as_of``, filters and options (``orchestration.batch`` groups by them). A
# batch builder reads the institution from ``BATCH_COLUMN`` (``institutions_frame`` for its name and
# subdomain), never from ``requests[0].institution``.


def keyed(frame: pl.DataFrame | None, institution_id: int) -> pl.DataFrame | None:
    """One institution's extracted frame with its ``BATCH_COLUMN`` (as a batched query returns it)."""
    if frame is None or frame.width == 0 or BATCH_COLUMN in frame.columns:
        return frame
    # Series and frame operations directly, not a select: ~0.2 ms of query overhead per frame is
    # what the single path would pay for its batch of one.
    key = pl.Series(BATCH_COLUMN, [institution_id], pl.Int64()).new_from_index(0, frame.height)
    return frame.clone().insert_column(0, key)


def key_frames(frames: Mapping[str, pl.DataFrame], institution_id: int) -> dict[str, pl.DataFrame]:
    """One institution's extracted frames, keyed as a batch of one."""
    out = {name: keyed(frame, institution_id) for name, frame in frames.items()}
    return {name: frame for name, frame in out.items() if frame is not None}


def institutions_frame(requests: Sequence[ReportRequest]) -> pl.DataFrame:
    """``BATCH_COLUMN``, ``institution_name``, ``subdomain`` of the batch's institutions."""
    return pl.DataFrame(
        {
            BATCH_COLUMN: [r.institution.id for r in requests],
            "institution_name": [r.institution.name for r in requests],
            "subdomain": [r.institution.subdomain for r in requests],
        },
        schema={BATCH_COLUMN: pl.Int64(), "institution_name": pl.String(), "subdomain": pl.String()},
    )


def batch_of_one(build_batch: BatchBuilder) -> Builder:
    """The single-institution builder of a batch builder: key the frames, build, drop the key."""

    def build(frames: Mapping[str, pl.DataFrame], request: ReportRequest) -> pl.DataFrame:
        return build_batch(key_frames(frames, request.institution.id), [request]).drop(BATCH_COLUMN)

    build.__doc__ = build_batch.__doc__
    build.__name__ = getattr(build_batch, "__name__", "build")
    return build


def conform_keyed(
    table: str, frames: Mapping[str, pl.DataFrame], columns: Sequence[str] | None = None, *, required: bool = False
) -> pl.DataFrame:
    """``assets.warehouse.tables.conform`` of a keyed frame, ``BATCH_COLUMN`` (Int64) kept as its first column."""
    frame = frames.get(table)
    if frame is None or frame.width == 0:
        empty = conform(table, frame, columns, required=required)
        return empty.select(pl.lit(None, pl.Int64()).alias(BATCH_COLUMN), pl.all()).clear()
    if BATCH_COLUMN not in frame.columns:
        raise ValueError(f"{table}: frame without {BATCH_COLUMN} (see keyed)")
    rest = pl.DataFrame([frame.get_column(c) for c in frame.columns if c != BATCH_COLUMN])
    out = conform(table, rest, columns, required=required)
    if out.height != frame.height:
        raise ValueError(f"{table}: a keyed frame without columns")
    return out.insert_column(0, frame[BATCH_COLUMN].cast(pl.Int64()))
