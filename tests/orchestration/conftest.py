from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.resources import ReportOptionsResource, ReportStorageResource, WarehouseResource
from orchestration.settings import Settings


@pytest.fixture()
def report_dir(tmp_path: Path) -> Path:
    d = tmp_path / "reports"
    d.mkdir()
    return d


@pytest.fixture()
def resources(tiny_warehouse: str, report_dir: Path) -> dict:
    s = Settings()
    return {
        "warehouse": WarehouseResource(url=tiny_warehouse),
        "storage": ReportStorageResource(
            location=str(report_dir), public_base_url="http://testserver", link_secret="k"
        ),
        "options": ReportOptionsResource(options_json=json.dumps(s.report_options())),
    }


@pytest.fixture()
def instance(tiny_warehouse: str) -> dg.DagsterInstance:
    """Ephemeral instance with the warehouse's institutions registered as partitions."""
    from orchestration.institutions import list_institutions
    from orchestration.warehouse.client import Warehouse

    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions("institution", [str(i.id) for i in list_institutions(Warehouse(tiny_warehouse))])
    return inst
