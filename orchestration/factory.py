"""Turn a ``ReportSpec`` into Dagster definitions — one factory for every report.

For each spec: a partitioned asset (institution x month, or institution only
for snapshot reports), an asset job the API launches for one partition, and an
ad-hoc job taking the request parameters as run config (ranges that are not a
whole month, or filters). Both paths share ``orchestration.produce``.

The asset is a ``multi_asset`` with a skippable spec so it can record one
materialization *per partition* (its own file, rows and checksum) inside a
batched backfill run; a plain ``@asset`` would add a metadata-less
materialization per partition after ours and hide the file from the cache.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.spec import ReportSpec
from orchestration import logs
from orchestration.institutions import list_institutions, load_institution, valid_timezone
from orchestration.partitions import (
    institution_partitions,
    month_bounds,
    parse_partition_key,
    report_partitions,
)
from orchestration.produce import ProducedReport, build_request, compute, write_and_store
from orchestration.resources import ReportOptionsResource, ReportStorageResource, WarehouseResource

POOL = "reports"
GROUP = "reports"


def _storage_names(
    spec: ReportSpec, institution_id: int, period: str, fmt: str, cache_key: str | None = None
) -> tuple[str, str]:
    from orchestration.storage import download_filename, report_key

    return (
        report_key(spec.slug, institution_id, period, fmt, cache_key=cache_key),
        download_filename(spec.slug, institution_id, period, fmt),
    )


def _materialization_metadata(produced: ProducedReport, partition_key: str) -> dict:
    meta = produced.metadata()
    return {
        **meta,
        "partition": partition_key,
        "rows": dg.MetadataValue.int(produced.rows),
        "bytes": dg.MetadataValue.int(produced.bytes),
        "preview": dg.MetadataValue.md(produced.preview_md),
    }


def report_asset(spec: ReportSpec, backfill_batch_size: int = 50) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name])
    partitions_def = report_partitions if spec.monthly else institution_partitions
    checks = [
        dg.AssetCheckSpec(
            "all_partitions_built",
            asset=key,
            description="Every partition of the run was extracted, built with exactly the spec's columns in order "
            "(enforced by produce.compute) and written; the metadata lists the failures.",
        ),
        dg.AssetCheckSpec(
            "file_stored", asset=key, description="Every written file is in storage with the size that was written."
        ),
    ]

    @dg.multi_asset(
        name=spec.name,
        specs=[
            dg.AssetSpec(
                key,
                partitions_def=partitions_def,
                skippable=True,
                description=spec.description,
                group_name=GROUP,
                kinds={"polars", spec.default_format},
                tags={"report": spec.slug},
                metadata={
                    "columns": dg.MetadataValue.md(
                        "\n".join(f"- `{c.key}` → **{c.header}** ({c.kind})" for c in spec.columns)
                    )
                },
            )
        ],
        check_specs=checks,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=backfill_batch_size),
        pool=POOL,
    )
    def _report(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        storage: ReportStorageResource,
        options: ReportOptionsResource,
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        client, store, opts = warehouse.client(), storage.get(), options.as_options()
        log = logs.run_logger("orchestration.reports", run_id=context.run.run_id, report=spec.slug)
        as_of = datetime.now(UTC)
        # One institutions query per run, not one connection per partition of a batch.
        known = {i.id: i for i in list_institutions(client) if valid_timezone(i.timezone)}
        done: list[ProducedReport] = []
        failed: dict[str, str] = {}
        for pk in context.partition_keys:
            part = parse_partition_key(pk)
            try:
                # load_institution raises the precise error for unknown / misconfigured ones
                institution = known.get(part.institution_id) or load_institution(client, part.institution_id)
                start, end = month_bounds(part.month, institution.timezone) if part.month else (None, None)
                request = build_request(institution, start, end, opts, as_of=as_of)
                computed = compute(spec, request, client)
                period = part.period_label if part.month else f"snapshot-{as_of:%Y-%m-%d}"
                skey, fname = _storage_names(spec, part.institution_id, period, spec.default_format)
                produced = write_and_store(spec, computed, request, spec.default_format, store, skey, fname)
            except Exception as exc:  # keep going: one bad partition must not sink the batch
                context.log.exception(f"partition {pk} failed")
                log.exception("partition failed", extra={"institution": part.institution_id, "partition": pk})
                failed[pk] = f"{type(exc).__name__}: {exc}"
                continue
            done.append(produced)
            context.log.info(f"{spec.name} {pk}: {produced.rows} rows -> {produced.storage_key}")
            log.info("report built", extra={"institution": part.institution_id, "partition": pk, "rows": produced.rows})
            yield dg.AssetMaterialization(asset_key=key, partition=pk, metadata=_materialization_metadata(produced, pk))
            if len(context.partition_keys) == 1:
                _tag_run(context, produced)
        stored_ok = [p for p in done if store.exists(p.storage_key) and store.size(p.storage_key) == p.bytes]
        yield dg.AssetCheckResult(
            check_name="all_partitions_built",
            asset_key=key,
            passed=not failed,
            metadata={"failed_partitions": len(failed), "errors": dg.MetadataValue.json(failed)},
        )
        yield dg.AssetCheckResult(
            check_name="file_stored",
            asset_key=key,
            passed=bool(done) and len(stored_ok) == len(done),
            metadata={"stored": len(stored_ok), "written": len(done)},
        )
        if failed:
            raise dg.Failure(
                description=f"{len(failed)} of {len(context.partition_keys)} partitions failed",
                metadata={"errors": dg.MetadataValue.json(failed)},
            )

    return _report


def _tag_run(context: dg.OpExecutionContext, produced: ProducedReport) -> None:
    """Single-request runs expose their file through run tags too, so the API and
    the delivery sensor find it from the run alone."""
    context.instance.add_run_tags(
        context.run.run_id,
        {
            "lxp/storage_key": produced.storage_key,
            "lxp/filename": produced.filename,
            "lxp/rows": str(produced.rows),
            "lxp/bytes": str(produced.bytes),
        },
    )


def report_asset_job(spec: ReportSpec) -> "UnresolvedAssetJobDefinition":
    """The job the API launches for exactly one partition (with all three partition tags)."""
    return dg.define_asset_job(
        name=f"{spec.name}_job",
        selection=dg.AssetSelection.assets(dg.AssetKey([spec.name])),
        tags={"lxp/report": spec.slug},
        description=f"Materialize one partition of {spec.title}.",
    )


class AdhocReportConfig(dg.Config):
    """Request parameters for reports that are not a whole month or have filters."""

    institution_id: int
    start: str = ""  # ISO-8601 aware datetime, inclusive; empty for snapshot reports
    end: str = ""  # ISO-8601 aware datetime, exclusive
    filters_json: str = "{}"
    fmt: str = ""


def adhoc_job(spec: ReportSpec) -> dg.JobDefinition:
    @dg.op(name=f"{spec.name}_build_report", description=f"Build {spec.title} for arbitrary parameters.", pool=POOL)
    def build_report(
        context: dg.OpExecutionContext,
        config: AdhocReportConfig,
        warehouse: WarehouseResource,
        storage: ReportStorageResource,
        options: ReportOptionsResource,
    ) -> dg.Output[dict]:
        from orchestration.cache_key import cache_key as make_cache_key

        client, store = warehouse.client(), storage.get()
        fmt = config.fmt or spec.default_format
        if fmt not in spec.formats:
            raise dg.Failure(f"format {fmt!r} not offered by {spec.name}; use one of {spec.formats}")
        filters = json.loads(config.filters_json or "{}")
        unknown = set(filters) - set(spec.filter_names)
        if unknown:
            raise dg.Failure(f"unknown filters for {spec.name}: {sorted(unknown)}")
        institution = load_institution(client, config.institution_id)
        start, end = _adhoc_bounds(config.start, config.end, institution.timezone)
        request = build_request(institution, start, end, options.as_options(), filters=filters)
        computed = compute(spec, request, client)
        period = _adhoc_period(start, end, institution.timezone, request.as_of)
        ck = context.run.tags.get("lxp/cache_key") or make_cache_key(
            spec.slug, institution.id, {"start": config.start, "end": config.end, "filters": filters, "fmt": fmt}
        )
        skey, fname = _storage_names(spec, institution.id, period, fmt, cache_key=ck)
        produced = write_and_store(spec, computed, request, fmt, store, skey, fname)
        _tag_run(context, produced)
        logs.run_logger("orchestration.reports", run_id=context.run.run_id, report=spec.slug).info(
            "report built", extra={"institution": institution.id, "rows": produced.rows, "period": period}
        )
        return dg.Output(
            produced.metadata(),
            metadata={
                **produced.metadata(),
                "preview": dg.MetadataValue.md(produced.preview_md),
                "filters": dg.MetadataValue.json(filters),
            },
        )

    @dg.job(
        name=f"{spec.name}_adhoc",
        description=f"{spec.title} for a custom range or filters.",
        tags={"lxp/report": spec.slug},
    )
    def _job() -> None:
        build_report.alias("build_report")()

    return _job


def _adhoc_bounds(start: str, end: str, tz: str) -> tuple[datetime | None, datetime | None]:
    """Parse the ad-hoc range. A time without an offset (typed in the UI's launchpad)
    is the institution's local time, never the server's; both or neither must be given."""

    def parse(text: str) -> datetime:
        value = datetime.fromisoformat(text)
        return value.replace(tzinfo=ZoneInfo(tz)) if value.tzinfo is None else value

    if not start and not end:
        return None, None
    if not start or not end:
        raise dg.Failure("give both start and end (ISO-8601), or neither for snapshot reports")
    lo, hi = parse(start), parse(end)
    if lo >= hi:
        raise dg.Failure(f"start {start!r} must be before end {end!r} (end is exclusive)")
    return lo, hi


def _adhoc_period(start: datetime | None, end: datetime | None, tz: str, as_of: datetime) -> str:
    """Readable period for file names: local first..last day (end is exclusive)."""
    if start is None or end is None:
        return f"snapshot-{as_of:%Y-%m-%d}"
    zone = ZoneInfo(tz)
    last = (end.astimezone(zone) - timedelta(microseconds=1)).date()
    return f"{start.astimezone(zone).date():%Y-%m-%d}_{last:%Y-%m-%d}"
