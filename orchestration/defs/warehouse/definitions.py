"""The warehouse domain: its tables as external assets."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.warehouse.tables import warehouse_table_specs
from orchestration.settings import Settings


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=warehouse_table_specs())
