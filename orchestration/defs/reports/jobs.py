"""The jobs of a report: the asset job the API launches for exactly one
partition, and the ad-hoc job taking the request as run config (ranges that
are not a whole month, or filters)."""

from collections.abc import Set as AbstractSet
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
from orchestration import logs
from orchestration.defs.reports.asset import POOL, storage_names, tag_run
from orchestration.defs.reports.checks import ALL_PARTITIONS_BUILT, FILE_STORED
from orchestration.defs.reports.retry import transient_policy, transient_retry
from orchestration.defs.resources import ReportOptionsResource, ReportStorageResource, WarehouseResource
from orchestration.institutions import load_institution
from orchestration.produce import compute, write_and_store
from orchestration.settings import Settings
from orchestration.transient import is_transient


def report_asset_job(
    spec: ReportSpec, hooks: AbstractSet[dg.HookDefinition] = frozenset()
) -> UnresolvedAssetJobDefinition:
    """The job the API launches for exactly one partition (with all three partition tags).

    ``hooks``: the code location adds the run-end delivery hook (``defs/delivery/hook.py``)."""
    key = dg.AssetKey([spec.name])
    return dg.define_asset_job(
        name=partition_job_name(spec.name),
        # the asset and its own checks; not the daily last-closed-month check
        selection=dg.AssetSelection.assets(key).without_checks()
        | dg.AssetSelection.checks(*(dg.AssetCheckKey(key, name) for name in (ALL_PARTITIONS_BUILT, FILE_STORED))),
        tags={TAG_REPORT: spec.slug},
        description=f"Materialize one partition of {spec.title}.",
        hooks=set(hooks),
    )


class AdhocReportConfig(AdhocParams, dg.Config):
    """Request parameters for reports that are not a whole month or have filters:
    exactly the contract's ``AdhocParams`` (the launcher sends those), as Dagster config."""


def adhoc_job(
    spec: ReportSpec, settings: Settings, hooks: AbstractSet[dg.HookDefinition] = frozenset()
) -> dg.JobDefinition:
    """``settings``: the transient retry delay of its step; ``hooks`` as for :func:`report_asset_job`."""
    retry = transient_policy(settings.transient_retry_delay_seconds)

    @dg.op(
        name=f"{spec.name}_build_report",
        description=f"Build {spec.title} for arbitrary parameters.",
        pool=POOL,
    )
    def build_report(
        context: dg.OpExecutionContext,
        config: AdhocReportConfig,
        warehouse: WarehouseResource,
        storage: ReportStorageResource,
        options: ReportOptionsResource,
    ) -> dg.Output[dict[str, Any]]:
        try:
            client, store = warehouse.client(), storage.get()
            institution = load_institution(client, config.institution_id)
            request = RequestedReport.from_adhoc(spec, institution, config)
            inputs = request.inputs(options.as_options())
            computed = compute(spec, inputs, client)
            ck = context.run.tags.get(TAG_CACHE_KEY) or request.cache_key
            skey, fname = storage_names(request, inputs.as_of, cache_key=ck)
            produced = write_and_store(spec, computed, inputs, request.fmt, store, skey, fname)
        except Exception as exc:
            if is_transient(exc):
                raise transient_retry(context, retry) from exc  # tried again, with backoff
            raise dg.Failure(f"{type(exc).__name__}: {exc}", allow_retries=False) from exc
        tag_run(context, produced, institution.name)
        logs.run_logger("orchestration.reports", run_id=context.run.run_id, report=spec.slug).info(
            "report built",
            extra={"institution": institution.id, "rows": produced.rows, "period": request.period_label(inputs.as_of)},
        )
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
        hooks=set(hooks),
    )
    def _job() -> None:
        build_report.alias(ADHOC_OP)()

    return _job
