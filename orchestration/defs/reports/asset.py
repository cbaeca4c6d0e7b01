"""The partitioned asset of a report (institution x month, or institution only
for snapshot reports); ``jobs`` holds the jobs that run it. Both share
``orchestration.produce``.

The asset is a ``multi_asset`` with a skippable spec so it can record one
materialization *per partition* (its own file, rows and checksum) inside a
batched backfill run; a plain ``@asset`` would add a metadata-less
materialization per partition after ours and hide the file from the cache.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from assets.contract import META_INSTITUTION_NAME, META_PARTITION, META_PREVIEW, TAG_INSTITUTION_NAME, ProducedFile
from assets.request import RequestedReport
from assets.spec import ReportRequest, ReportSpec
from orchestration import logs
from orchestration.batch import compute_many
from orchestration.defs.reports.checks import ALL_PARTITIONS_BUILT, FILE_STORED, check_specs
from orchestration.defs.reports.partitions import institution_partitions, parse_partition_key, report_partitions
from orchestration.defs.reports.retry import transient_policy, transient_retry
from orchestration.defs.resources import ReportOptionsResource, ReportStorageResource, WarehouseResource
from orchestration.defs.warehouse.tables import tables_read_by
from orchestration.institutions import list_institutions, load_institution, valid_timezone
from orchestration.produce import write_and_store
from orchestration.settings import Settings
from orchestration.transient import is_transient

POOL = "reports"  # concurrency pool of report steps (limited in dagster.yaml)
GROUP = "reports"


def storage_names(request: RequestedReport, as_of: datetime, cache_key: str | None = None) -> tuple[str, str]:
    """(storage key, file name) of the request's file; ad-hoc files are keyed by their cache key too."""
    from orchestration.delivery.storage import report_key

    period = request.period_label(as_of)
    return (
        report_key(request.spec.slug, request.institution.id, period, request.fmt, cache_key=cache_key),
        request.file_name(as_of),
    )


def _materialization_metadata(produced: ProducedFile, partition_key: str, institution_name: str) -> dict[str, Any]:
    return {
        **produced.metadata(),
        META_PARTITION: partition_key,
        META_INSTITUTION_NAME: institution_name,
        META_PREVIEW: dg.MetadataValue.md(produced.preview_md),
    }


def report_asset(spec: ReportSpec, settings: Settings) -> dg.AssetsDefinition:
    """``settings``: the month dimension's first month, the backfill batch size and the transient retry delay."""
    key = dg.AssetKey([spec.name])
    partitions_def = report_partitions(settings.first_partition_month) if spec.monthly else institution_partitions
    retry = transient_policy(settings.transient_retry_delay_seconds)

    @dg.multi_asset(
        name=spec.name,
        specs=[
            dg.AssetSpec(
                key,
                partitions_def=partitions_def,
                skippable=True,
                deps=tables_read_by(spec),
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
        check_specs=check_specs(key),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=settings.backfill_batch_size),
        pool=POOL,
    )
    def _report(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        storage: ReportStorageResource,
        options: ReportOptionsResource,
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        log = logs.run_logger("orchestration.reports", run_id=context.run.run_id, report=spec.slug)
        as_of = datetime.now(UTC)
        try:
            client, store, opts = warehouse.client(), storage.get(), options.as_options()
            # One institutions query per run, not one connection per partition of a batch.
            known = {i.id: i for i in list_institutions(client) if valid_timezone(i.timezone)}
        except Exception as exc:
            if is_transient(exc):
                raise transient_retry(context, retry) from exc
            raise
        done: list[ProducedFile] = []
        failed: dict[str, str] = {}
        transient: list[str] = []

        def fail(pk: str, institution_id: int, exc: Exception) -> None:
            context.log.exception(f"partition {pk} failed")
            log.exception("partition failed", extra={"institution": institution_id, "partition": pk})
            failed[pk] = f"{type(exc).__name__}: {exc}"
            if is_transient(exc):
                transient.append(pk)

        # Resolve every partition first, then extract the inputs once per chunk of institutions
        # (orchestration.batch); each partition is still built, written and recorded on its own.
        pending: list[tuple[str, RequestedReport, ReportRequest]] = []
        # Read once: each access re-lists the dynamic partitions from the instance (~15 ms at 1,000 institutions).
        keys = context.partition_keys
        for pk in keys:
            part = parse_partition_key(pk)
            try:
                # load_institution raises the precise error for unknown / misconfigured ones
                institution = known.get(part.institution_id) or load_institution(client, part.institution_id)
                request = (
                    RequestedReport.for_month(spec, institution, part.month)
                    if part.month
                    else RequestedReport.snapshot(spec, institution)
                )
                pending.append((pk, request, request.inputs(opts, as_of)))
            except Exception as exc:  # keep going: one bad partition must not sink the batch
                fail(pk, part.institution_id, exc)
        inputs_list = [inputs for _, _, inputs in pending]
        for pos, computed in compute_many(spec, inputs_list, client, settings.batch_memory_mb):
            pk, request, inputs = pending[pos]
            try:
                if isinstance(computed, Exception):
                    raise computed
                skey, fname = storage_names(request, as_of)
                produced = write_and_store(spec, computed, inputs, request.fmt, store, skey, fname)
            except Exception as exc:  # keep going: one bad partition must not sink the batch
                fail(pk, request.institution.id, exc)
                continue
            done.append(produced)
            # One Dagster event per partition (the materialization); the line below is the Python log only.
            log.info(
                "report built", extra={"institution": request.institution.id, "partition": pk, "rows": produced.rows}
            )
            yield dg.AssetMaterialization(
                asset_key=key, partition=pk, metadata=_materialization_metadata(produced, pk, request.institution.name)
            )
            if len(keys) == 1:
                tag_run(context, produced, request.institution.name)
        context.log.info(f"{spec.name}: {len(done)} of {len(keys)} partitions built")
        log.info("reports built", extra={"built": len(done), "failed": len(failed)})
        stored_ok = [p for p in done if store.exists(p.storage_key) and store.size(p.storage_key) == p.bytes]
        yield dg.AssetCheckResult(
            check_name=ALL_PARTITIONS_BUILT,
            asset_key=key,
            passed=not failed,
            metadata={"failed_partitions": len(failed), "errors": dg.MetadataValue.json(failed)},
        )
        yield dg.AssetCheckResult(
            check_name=FILE_STORED,
            asset_key=key,
            passed=bool(done) and len(stored_ok) == len(done),
            metadata={"stored": len(stored_ok), "written": len(done)},
        )
        if failed:
            # Retried (with the whole batch; built partitions are rebuilt) only when a failure was transient.
            failure = dg.Failure(
                description=f"{len(failed)} of {len(keys)} partitions failed"
                + (f" ({len(transient)} transient: retrying)" if transient else ""),
                metadata={"errors": dg.MetadataValue.json(failed), "transient": dg.MetadataValue.json(transient)},
                allow_retries=False,
            )
            if transient:
                raise transient_retry(context, retry) from failure
            raise failure

    return _report


def tag_run(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, produced: ProducedFile, institution_name: str
) -> None:
    """Single-request runs expose their file through run tags too, so the API and
    the delivery sensor find it from the run alone (and ops see whose it is)."""
    context.instance.add_run_tags(context.run.run_id, {**produced.run_tags(), TAG_INSTITUTION_NAME: institution_name})
