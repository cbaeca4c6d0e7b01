"""Keep the dynamic ``institution`` partitions in sync with the warehouse.

New institutions join in registration order (grouped by zone), so a zone group
is one contiguous range of partitions Dagster can batch into one backfill run.
"""

from datetime import UTC, datetime

import dagster as dg

from assets.contract import INSTITUTION_DIMENSION
from orchestration.defs.reports.partitions import institution_partitions
from orchestration.defs.resources import WarehouseResource
from orchestration.institutions import list_institutions, unregistered


@dg.sensor(
    name="institution_sync",
    description="Adds a dynamic `institution` partition for every institution in the warehouse (grouped by zone).",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def institution_sync(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    known = set(context.instance.get_dynamic_partitions(INSTITUTION_DIMENSION))
    new = unregistered(list_institutions(warehouse.client()), known, datetime.now(UTC))
    if not new:
        return dg.SkipReason(f"{len(known)} institutions already registered")
    return dg.SensorResult(dynamic_partitions_requests=[institution_partitions.build_add_request(new)])
