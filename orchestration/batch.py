"""Extract a report's inputs for many institutions at once (a backfill run's range), Dagster-free.

``compute_many`` takes the requests of one run (one report, many institutions), groups them by
their query parameters other than the institution (for a month: the UTC bounds, which differ by
timezone; the partitions of a run are registered by UTC offset and zone, so a run holds one or two
such groups), cuts each group into chunks whose estimated input size stays under a memory budget,
runs each of the spec's queries once per chunk (``assets.batching.batch_query``) and splits the
frames per institution. Each institution's ``Computed`` is then built and written by the usual path
(``orchestration.produce.write_and_store``), so its file is the one the single-partition path writes.

Why grouping by bounds rather than one union window filtered per institution: the builders take
the frames as their query returned them (some do not re-filter by period, the ``users`` lookups
depend on the period), so a wider window would change what they see; same-bound groups keep the
queries' text and meaning, and cost nothing extra since a run's range is contiguous in UTC offset.

The memory estimate is the institutions' row counts in the tables the spec reads (all time, an
over-estimate of one month: safe), times ``ROW_BYTES``; counted with one ``GROUP BY`` query per
table for the whole run. A chunk always takes at least one institution, so the biggest one alone
runs as it did before. If a chunk's batched extraction fails, its institutions fall back to one
extraction each, so a failure stays with the partition that causes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from assets.batching import BATCH_COLUMN, NotBatchable, batch_query, split, split_frame
from assets.spec import ReportRequest, ReportSpec
from assets.writers.render import Computed, renders_summary
from orchestration.produce import compute
from orchestration.warehouse.client import Warehouse

log = logging.getLogger(__name__)

#: Bytes an extracted row is assumed to take in Polars, for the chunk budget (measured on the
#: generated warehouse: 40-120 bytes per row for the report queries; the split copies it once more).
ROW_BYTES = 256
DEFAULT_MEMORY_MB = 512
_TABLE_REF = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Chunk:
    requests: tuple[ReportRequest, ...]
    params: Mapping[str, object]

    @property
    def institution_ids(self) -> list[int]:
        return [r.institution.id for r in self.requests]


def tables_of(spec: ReportSpec) -> list[str]:
    return sorted({t for sql in spec.queries.values() for t in _TABLE_REF.findall(sql)})


def estimate_rows(warehouse: Warehouse, tables: Sequence[str], institution_ids: Sequence[int]) -> dict[int, int]:
    """All-time rows of each institution in ``tables`` (one GROUP BY query per table)."""
    ids = sorted({int(i) for i in institution_ids})
    rows = dict.fromkeys(ids, 0)
    if not ids:
        return rows
    id_list = ", ".join(str(i) for i in ids)
    queries = {
        t: f"SELECT institution_id AS {BATCH_COLUMN}, COUNT(*) AS n FROM {t} "
        f"WHERE institution_id IN ({id_list}) GROUP BY institution_id"
        for t in tables
    }
    for frame in warehouse.query_many(queries).values():
        for inst, n in frame.iter_rows():
            rows[int(inst)] += int(n)
    return rows


def plan_chunks(requests: Sequence[ReportRequest], rows: Mapping[int, int], budget_bytes: int) -> list[Chunk]:
    """Requests grouped by their non-institution query parameters, then cut greedily (in order) by the budget."""
    groups: dict[tuple[tuple[str, object], ...], list[ReportRequest]] = {}
    for request in requests:
        params = {k: v for k, v in request.query_params().items() if k != "institution_id"}
        groups.setdefault(tuple(sorted(params.items())), []).append(request)
    chunks: list[Chunk] = []
    for key, members in groups.items():
        current: list[ReportRequest] = []
        size = 0
        for request in members:
            need = rows.get(request.institution.id, 0) * ROW_BYTES
            if current and size + need > budget_bytes:
                chunks.append(Chunk(tuple(current), dict(key)))
                current, size = [], 0
            current.append(request)
            size += need
        if current:
            chunks.append(Chunk(tuple(current), dict(key)))
    return chunks


def compute_many(
    spec: ReportSpec,
    requests: Sequence[ReportRequest],
    warehouse: Warehouse,
    memory_mb: int = DEFAULT_MEMORY_MB,
    fmt: str | None = None,
) -> Iterator[tuple[int, Computed | Exception]]:
    """``(index into requests, Computed or the extraction error)`` for every request, chunk by chunk.

    ``fmt`` (default: the spec's) decides what is built per chunk: the flat table or the nested document.
    Only one chunk's frames are alive at a time (the caller builds and writes each ``Computed``
    before asking for the next). Requests for the same institution twice are computed separately.
    """
    if len(requests) <= 1 or len({r.institution.id for r in requests}) < len(requests):
        yield from _one_by_one(spec, requests, range(len(requests)), warehouse)
        return
    index = {id(r): n for n, r in enumerate(requests)}
    try:
        rows = estimate_rows(warehouse, tables_of(spec), [r.institution.id for r in requests])
    except Exception:
        log.warning("row estimate failed; extracting one institution at a time", exc_info=True)
        yield from _one_by_one(spec, requests, range(len(requests)), warehouse)
        return
    for chunk in plan_chunks(requests, rows, memory_mb * 1024 * 1024):
        positions = [index[id(r)] for r in chunk.requests]
        if len(chunk.requests) == 1:
            yield from _one_by_one(spec, chunk.requests, positions, warehouse)
            continue
        try:
            ids = chunk.institution_ids
            queries = {name: batch_query(sql, ids) for name, sql in spec.queries.items()}
            frames = warehouse.query_many(queries, chunk.params)
            per_institution = split(frames, ids)
        except NotBatchable:
            yield from _one_by_one(spec, chunk.requests, positions, warehouse)
            continue
        except Exception:
            log.warning("batched extraction of %d institutions failed; one at a time", len(ids), exc_info=True)
            yield from _one_by_one(spec, chunk.requests, positions, warehouse)
            continue
        built, summarized = build_chunk(spec, chunk.requests, frames, fmt or spec.default_format)
        del frames
        for pos, request in zip(positions, chunk.requests, strict=True):
            inst = request.institution.id
            yield (
                pos,
                Computed(
                    spec=spec,
                    request=request,
                    frames=per_institution.pop(inst),
                    built=built.pop(inst, None),
                    summarized=summarized.pop(inst, None),
                ),
            )
        del per_institution, built, summarized


def _shared(request: ReportRequest) -> tuple[object, ...]:
    """What a batch builder's requests must share: everything but the institution's id, name and subdomain."""
    return (
        request.institution.timezone,
        request.start,
        request.end,
        request.as_of,
        sorted(request.filters.items(), key=repr),
        sorted(request.options.items(), key=repr),
    )


def build_chunk(
    spec: ReportSpec, requests: Sequence[ReportRequest], frames: Mapping[str, pl.DataFrame], fmt: str
) -> tuple[dict[int, pl.DataFrame], dict[int, dict[str, Any]]]:
    """Each institution's flat table, or its nested document when ``fmt`` renders one, built in one pass
    per group of requests that share everything but the institution (in a run: per timezone), when the
    spec has a batch builder for it. A group whose batch build fails is left out: its institutions are
    then built one by one by the writer, so an error stays with its partition."""
    summary = renders_summary(spec, fmt)
    if (spec.summary_batch if summary else spec.build_batch) is None:
        return {}, {}
    groups: dict[str, list[ReportRequest]] = {}
    for request in requests:
        groups.setdefault(repr(_shared(request)), []).append(request)
    built: dict[int, pl.DataFrame] = {}
    summarized: dict[int, dict[str, Any]] = {}
    for members in groups.values():
        ids = [r.institution.id for r in members]
        try:
            subset = frames
            if len(members) < len(requests):
                wanted = pl.Series(ids, dtype=pl.Int64())
                subset = {n: f.filter(pl.col(BATCH_COLUMN).is_in(wanted.implode())) for n, f in frames.items()}
            if summary and spec.summary_batch is not None:
                summarized.update(spec.summary_batch(subset, members))
            elif spec.build_batch is not None:
                built.update(split_frame(spec.build_batch(subset, members), ids))
        except Exception:
            log.warning("batch build of %d institutions failed; one at a time", len(ids), exc_info=True)
    return built, summarized


def _one_by_one(
    spec: ReportSpec, requests: Sequence[ReportRequest], positions: Sequence[int], warehouse: Warehouse
) -> Iterator[tuple[int, Computed | Exception]]:
    for pos, request in zip(positions, requests, strict=True):
        try:
            yield pos, compute(spec, request, warehouse)
        except Exception as exc:
            yield pos, exc
