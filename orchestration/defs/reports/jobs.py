"""The jobs of a report: the asset job the API launches for exactly one
partition, and the ad-hoc job taking the request as run config (ranges that
are not a whole month, or filters)."""

from typing import Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.contract import (
    ADHOC_OP,
    META_PREVIEW,
    TAG_CACHE_KEY,
    TAG_REPORT,
    AdhocParams,
    adhoc_job_name,
    partition_job_name,
)
from assets.request import RequestedReport
from assets.spec import ReportSpec
from orchestration.defs.reports.asset import POOL, storage_names, tag_run
from orchestration.defs.resources import ReportOptionsResource, ReportStorageResource, WarehouseResource
from orchestration.institutions import load_institution
from orchestration.produce import compute, write_and_store


def report_asset_job(spec: ReportSpec) -> UnresolvedAssetJobDefinition:
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
        skey, fname = storage_names(request, inputs.as_of, cache_key=ck)
        produced = write_and_store(spec, computed, inputs, request.fmt, store, skey, fname)
        tag_run(context, produced)
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
