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

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.contract import (
    ADHOC_OP,
    META_PARTITION,
    META_PREVIEW,
    TAG_CACHE_KEY,
    TAG_REPORT,
    AdhocParams,
    ProducedFile,
    adhoc_job_name,
    partition_job_name,
)
from assets.request import RequestedReport
from assets.spec import ReportSpec
from orchestration.institutions import list_institutions, load_institution, valid_timezone
from orchestration.partitions import institution_partitions, parse_partition_key, report_partitions
from orchestration.produce import compute, write_and_store
from orchestration.resources import ReportOptionsResource, ReportStorageResource, WarehouseResource

POOL = "reports"
GROUP = "reports"


def _storage_names(request: RequestedReport, as_of: datetime, cache_key: str | None = None) -> tuple[str, str]:
    """(storage key, file name) of the request's file; ad-hoc files are keyed by their cache key too."""
    from orchestration.storage import report_key

    period = request.period_label(as_of)
    return (
        report_key(request.spec.slug, request.institution.id, period, request.fmt, cache_key=cache_key),
        request.file_name(as_of),
    )


def _materialization_metadata(produced: ProducedFile, partition_key: str) -> dict[str, Any]:
    return {
        **produced.metadata(),
        META_PARTITION: partition_key,
        META_PREVIEW: dg.MetadataValue.md(produced.preview_md),
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
        as_of = datetime.now(UTC)
        # One institutions query per run, not one connection per partition of a batch.
        known = {i.id: i for i in list_institutions(client) if valid_timezone(i.timezone)}
        done: list[ProducedFile] = []
        failed: dict[str, str] = {}
        for pk in context.partition_keys:
            part = parse_partition_key(pk)
            try:
                # load_institution raises the precise error for unknown / misconfigured ones
                institution = known.get(part.institution_id) or load_institution(client, part.institution_id)
                request = (
                    RequestedReport.for_month(spec, institution, part.month)
                    if part.month
                    else RequestedReport.snapshot(spec, institution)
                )
                inputs = request.inputs(opts, as_of)
                computed = compute(spec, inputs, client)
                skey, fname = _storage_names(request, as_of)
                produced = write_and_store(spec, computed, inputs, request.fmt, store, skey, fname)
            except Exception as exc:  # keep going: one bad partition must not sink the batch
                context.log.exception(f"partition {pk} failed")
                failed[pk] = f"{type(exc).__name__}: {exc}"
                continue
            done.append(produced)
            context.log.info(f"{spec.name} {pk}: {produced.rows} rows -> {produced.storage_key}")
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


def _tag_run(context: dg.OpExecutionContext, produced: ProducedFile) -> None:
    """Single-request runs expose their file through run tags too, so the API and
    the delivery sensor find it from the run alone."""
    context.instance.add_run_tags(context.run.run_id, produced.run_tags())


def report_asset_job(spec: ReportSpec) -> "UnresolvedAssetJobDefinition":
    """The job the API launches for exactly one partition (with all three partition tags)."""
    return dg.define_asset_job(
        name=partition_job_name(spec.name),
        selection=dg.AssetSelection.assets(dg.AssetKey([spec.name])),
        tags={TAG_REPORT: spec.slug},
        description=f"Materialize one partition of {spec.title}.",
    )


class AdhocReportConfig(AdhocParams, dg.Config):  # type: ignore[misc]
    """Request parameters for reports that are not a whole month or have filters:
    exactly the contract's ``AdhocParams`` (the launcher sends those), as Dagster config."""


def adhoc_job(spec: ReportSpec) -> dg.JobDefinition:
    @dg.op(name=f"{spec.name}_build_report", description=f"Build {spec.title} for arbitrary parameters.", pool=POOL)
    def build_report(
        context: dg.OpExecutionContext,
        config: AdhocReportConfig,
        warehouse: WarehouseResource,
        storage: ReportStorageResource,
        options: ReportOptionsResource,
    ) -> dg.Output[dict[str, Any]]:
        client, store = warehouse.client(), storage.get()
        institution = load_institution(client, config.institution_id)
        try:
            request = RequestedReport.from_adhoc(spec, institution, config)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc
        inputs = request.inputs(options.as_options())
        computed = compute(spec, inputs, client)
        ck = context.run.tags.get(TAG_CACHE_KEY) or request.cache_key
        skey, fname = _storage_names(request, inputs.as_of, cache_key=ck)
        produced = write_and_store(spec, computed, inputs, request.fmt, store, skey, fname)
        _tag_run(context, produced)
        return dg.Output(
            produced.metadata(),
            metadata={
                **produced.metadata(),
                META_PREVIEW: dg.MetadataValue.md(produced.preview_md),
                "filters": dg.MetadataValue.json(dict(request.filters)),
            },
        )

    @dg.job(
        name=adhoc_job_name(spec.name),
        description=f"{spec.title} for a custom range or filters.",
        tags={TAG_REPORT: spec.slug},
    )
    def _job() -> None:
        build_report.alias(ADHOC_OP)()

    return _job
