"""One external ``AssetSpec`` per warehouse table (names from the schema in
``orchestration.warehouse.tables``), and which of them a report reads.

The tables are loaded outside Dagster (the platform's ETL, or ``lxp-reports
generate`` in the demo), so Dagster never materializes them; declaring them
still puts them upstream of the reports in the asset graph, which is where an
operator looks for "what does this report depend on".
"""

from __future__ import annotations

import re

import dagster as dg

from assets.spec import ReportSpec
from orchestration.warehouse.tables import table_schemas

GROUP = "warehouse"
_TABLE_REF = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def table_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", table])


def warehouse_table_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            table_key(table),
            group_name=GROUP,
            description=f"Warehouse table `{table}` (loaded outside Dagster; read-only here).",
            kinds={"sql"},
            metadata={
                "columns": dg.MetadataValue.md("\n".join(f"- `{name}` ({dtype})" for name, dtype in schema.items()))
            },
        )
        for table, schema in table_schemas().items()
    ]


def tables_read_by(spec: ReportSpec) -> list[dg.AssetKey]:
    """The warehouse tables named in the report's extraction queries (FROM/JOIN), as asset keys."""
    known = set(table_schemas())
    found = {m for sql in spec.queries.values() for m in _TABLE_REF.findall(sql)}
    return [table_key(t) for t in sorted(found & known)]
