"""Shared helpers of the offline deployment checks: where the deploy files are and the run-queue
limits they must mirror (orchestration/instance_config.py is the one home of those limits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestration.instance_config import local_profile
from orchestration.settings import Settings
from tests.services.postgres import postgres_url  # noqa: F401 - fixture for the instance test

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def default_settings() -> Settings:
    """Settings at their declared defaults, whatever LXP_* the test process inherited."""
    fields = Settings.model_fields
    return Settings(
        max_concurrent_runs=fields["max_concurrent_runs"].default,
        max_runs_per_institution=fields["max_runs_per_institution"].default,
    )


def reference_limits() -> dict[str, Any]:
    """The ``concurrency:`` block of the embedded instance, rendered from the defaults."""
    return dict(yaml.safe_load(local_profile(default_settings()))["concurrency"])
