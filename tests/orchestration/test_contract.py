"""The run/file contract: the ad-hoc job's Dagster config schema is the
contract's ``AdhocParams`` (the launcher sends exactly those), and the produced
file survives its round trips through run tags and materialization metadata."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from assets.contract import (
    ADHOC_OP,
    TAG_FILENAME,
    TAG_ROWS,
    TAG_STORAGE_KEY,
    AdhocParams,
    ProducedFile,
    adhoc_job_name,
)
from assets.registry import REPORTS
from orchestration.defs.reports.jobs import adhoc_job
from orchestration.settings import Settings

_PY_TO_DAGSTER = {int: "Int", str: "String", float: "Float", bool: "Bool"}


def _dagster_fields(job: dg.JobDefinition) -> dict[str, tuple[str, bool, Any]]:
    """(type name, required, default) of each field of the ad-hoc op's config schema, as Dagster sees it."""
    op = job.graph.node_named(ADHOC_OP).definition
    assert op.config_schema is not None
    fields = op.config_schema.as_field().config_type.fields
    out = {}
    for name, field in fields.items():
        kind = field.config_type
        if kind.kind.name == "NONEABLE":  # Dagster marks defaulted fields Noneable
            kind = kind.inner_type
        if kind.kind.name == "SCALAR_UNION":  # ...and accepts env-var sources for scalars
            kind = kind.scalar_type
        out[name] = (kind.key, field.is_required, field.default_value if field.default_provided else None)
    return out


def _contract_fields() -> dict[str, tuple[str, bool, Any]]:
    out = {}
    for name, info in AdhocParams.model_fields.items():
        out[name] = (_PY_TO_DAGSTER[info.annotation], info.is_required(), None if info.is_required() else info.default)
    return out


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_adhoc_config_schema_is_the_contract_model(name: str) -> None:
    job = adhoc_job(REPORTS[name], Settings())
    assert job.name == adhoc_job_name(name)
    assert _dagster_fields(job) == _contract_fields()


def test_launcher_run_config_validates_against_the_job() -> None:
    """The run config the API sends is accepted by Dagster's schema as-is."""
    from orchestration.defs.resources import ReportOptionsResource, ReportStorageResource, WarehouseResource

    defs = dg.Definitions(
        jobs=[adhoc_job(REPORTS["course_catalog"], Settings())],
        resources={
            "warehouse": WarehouseResource(url="duckdb:///nowhere.duckdb"),
            "storage": ReportStorageResource(location="/nowhere"),
            "options": ReportOptionsResource(options_json="{}"),
        },
    )
    job = defs.get_job_def(adhoc_job_name("course_catalog"))
    params = AdhocParams(
        institution_id=1,
        start="2026-01-01T00:00:00-03:00",
        end="2026-06-03T00:00:00-03:00",
        filters_json='{"school_ids": [1, 2]}',
        fmt="xlsx",
    )
    validated = dg.validate_run_config(job, params.run_config())
    assert validated["ops"][ADHOC_OP]["config"] == params.model_dump()
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"ops": {ADHOC_OP: {"config": {**params.model_dump(), "extra": 1}}}})


def test_produced_file_round_trips_through_tags_and_metadata() -> None:
    produced = ProducedFile("r/institution=1/2026-06/r_1_2026-06.xlsx", "r_1_2026-06.xlsx", 12, 3456, "ab" * 32, "|x|")
    tags = produced.run_tags()
    assert tags[TAG_STORAGE_KEY] == produced.storage_key and tags[TAG_FILENAME] == produced.filename
    assert tags[TAG_ROWS] == "12"
    back = ProducedFile.from_run_tags(tags)
    assert back == ProducedFile(produced.storage_key, produced.filename, 12, 3456)  # tags carry no checksum
    meta = ProducedFile.from_metadata(produced.metadata())
    assert meta == ProducedFile(produced.storage_key, produced.filename, 12, 3456, "ab" * 32)
    assert produced.fmt == "xlsx" and produced.metadata()["format"] == "xlsx"


def test_runs_without_a_file_have_no_produced_file() -> None:
    assert ProducedFile.from_run_tags({TAG_STORAGE_KEY: "k"}) is None
    assert ProducedFile.from_metadata({"filename": "f.csv"}) is None
    assert ProducedFile.from_run_tags({TAG_STORAGE_KEY: "k", TAG_FILENAME: "f.csv", TAG_ROWS: "x"}).rows is None
