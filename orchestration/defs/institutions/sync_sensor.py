"""Keep the dynamic ``institution`` partitions in sync with the warehouse."""

import dagster as dg

from orchestration.defs.reports.partitions import institution_partitions
from orchestration.defs.resources import WarehouseResource
from orchestration.institutions import list_institutions


@dg.sensor(
    name="institution_sync",
    description="Adds a dynamic `institution` partition for every institution in the warehouse.",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def institution_sync(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    wanted = [str(i.id) for i in list_institutions(warehouse.client())]
    known = set(context.instance.get_dynamic_partitions(institution_partitions.name))
    new = [k for k in wanted if k not in known]
    if not new:
        return dg.SkipReason(f"{len(known)} institutions already registered")
    return dg.SensorResult(dynamic_partitions_requests=[institution_partitions.build_add_request(new)])
