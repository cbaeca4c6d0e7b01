"""Dagster resources shared by the domains: the warehouse, report storage and report options.

Each is configured from the one ``Settings`` object by default, so the UI,
daemon and API agree; tests swap them for in-memory or tmp-dir variants.
Secrets and credential-bearing URLs reach them as ``dg.EnvVar`` (see
:func:`from_env`): the UI shows the variable's name, never its value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import AliasChoices

from orchestration.settings import Settings
from orchestration.warehouse.client import Warehouse, duckdb_path

#: Settings fields that are secrets or URLs that can carry a password (``LXP_<FIELD>``).
CREDENTIAL_FIELDS = ("link_secret", "notify_secret", "notify_url", "smtp_url", "ledger_url", "warehouse_url")


def from_env(name: str, value: str, environ: Mapping[str, str] | None = None) -> str:
    """``value`` as Dagster resource config: ``dg.EnvVar(name)`` when the process
    environment holds exactly ``value`` under ``name``, else ``value`` itself.

    Dagster shows a resource's config in the UI and its GraphQL (no auth), in
    the launchpad's defaults and in the job snapshots; an ``EnvVar`` is shown as
    the variable's name and resolved in each process that initializes the
    resource (code server or webserver/daemon, sensors, run workers: they all
    inherit one environment, ``orchestration.topology.environment``; on
    Kubernetes the code server and the run pods get the same Secret).

    The rule: a secret or credential-bearing URL that came from the environment
    (every deployment: ``Settings`` reads only the environment) is referenced,
    never copied. Otherwise there is no variable to reference and the literal
    goes in, which is then a derived, non-secret default (the DuckDB warehouse
    and the SQLite outbox under ``$LXP_HOME``), the published development
    default (``dev-link-secret-change-me``; production refuses those), an empty
    string (channel off) or a value a test passed to ``Settings`` directly.
    ``name`` is matched case-insensitively, as pydantic-settings reads it.
    """
    environ = os.environ if environ is None else environ
    if value:
        for key, found in environ.items():
            if key.upper() == name.upper() and found == value:
                return dg.EnvVar(key)
    return value


def env_names(settings: Settings, field: str) -> list[str]:
    """The variables a ``Settings`` field is read from: ``LXP_<FIELD>``, or its alias choices
    (e.g. ``LXP_LEDGER_URL`` and its former name ``LXP_LEDGER_URL``)."""
    alias = type(settings).model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [name.upper() for name in alias.choices if isinstance(name, str) and name.upper() != field.upper()]
    prefix = str(settings.model_config.get("env_prefix") or "")
    return [f"{prefix}{field}".upper()]


def settings_env(settings: Settings, field: str, value: str | None = None) -> str:
    """:func:`from_env` for a ``Settings`` field (``value`` when the field's value is derived, e.g. ``ledger``)."""
    found = getattr(settings, field) if value is None else value
    for name in env_names(settings, field):
        if (referenced := from_env(name, found)) is not found:
            return referenced
    return found


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
    """The shared resources; secrets and credential-bearing URLs as ``dg.EnvVar`` (:func:`from_env`)."""
    s = settings
    return {
        "warehouse": WarehouseResource(url=settings_env(s, "warehouse_url", s.warehouse)),
        "storage": ReportStorageResource(
            location=s.storage_location,
            endpoint_url=s.s3_endpoint_url,
            public_base_url=s.public_base_url,
            link_secret=settings_env(s, "link_secret"),
        ),
        "options": ReportOptionsResource(options_json=json.dumps(s.report_options(), sort_keys=True)),
    }
