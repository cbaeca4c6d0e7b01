"""Dagster resources shared by the domains: the warehouse, report storage and report options.

Each is configured from the one ``Settings`` object by default, so the UI,
daemon and API agree; tests swap them for in-memory or tmp-dir variants.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.settings import Settings
from orchestration.warehouse.client import Warehouse, duckdb_path


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # Dagster: a ConfigurableResource is its own resource value; subscripting the pydantic model class is not safe
    """Read-only warehouse access; DuckDB through dagster-duckdb, opened READ_ONLY
    so parallel runs and the API never fight over DuckDB's single-writer lock."""

    url: str

    def client(self) -> Warehouse:
        if self.url.startswith("duckdb:"):
            duck = DuckDBResource(database=duckdb_path(self.url), connection_config={"access_mode": "READ_ONLY"})

            def connect() -> AbstractContextManager[Any]:
                return duck.get_connection()

            return Warehouse(self.url, duckdb_connect=connect)
        return Warehouse(self.url)


class ReportStorageResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # Dagster: a ConfigurableResource is its own resource value; subscripting the pydantic model class is not safe
    """Where report files go: a local directory or ``s3://bucket/prefix``."""

    location: str
    endpoint_url: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    link_secret: str = ""

    def get(self) -> Any:
        from orchestration.delivery.storage import LocalReportStorage, S3ReportStorage

        if self.location.startswith("s3://"):
            bucket, _, prefix = self.location.removeprefix("s3://").partition("/")
            return S3ReportStorage(bucket=bucket, prefix=prefix, endpoint_url=self.endpoint_url or None)
        from pathlib import Path

        return LocalReportStorage(root=Path(self.location), base_url=self.public_base_url, link_secret=self.link_secret)


class ReportOptionsResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # Dagster: a ConfigurableResource is its own resource value; subscripting the pydantic model class is not safe
    """Builder options that are configuration, not request parameters
    (``Settings.report_options()`` as JSON, editable in the launchpad)."""

    options_json: str

    def as_options(self) -> dict[str, Any]:
        options: dict[str, Any] = json.loads(self.options_json)
        return options


def resources_from_settings(settings: Settings) -> dict[str, Any]:
    s = settings
    return {
        "warehouse": WarehouseResource(url=s.warehouse),
        "storage": ReportStorageResource(
            location=s.storage_location,
            endpoint_url=s.s3_endpoint_url,
            public_base_url=s.public_base_url,
            link_secret=s.link_secret,
        ),
        "options": ReportOptionsResource(options_json=json.dumps(s.report_options(), sort_keys=True)),
    }
