"""Shared helpers of the offline deployment checks: where the deploy files are, the run-queue
limits they must mirror (orchestration/instance_config.py is the one home of those limits), the
rendered kustomize output, Kubernetes quantities, and the measured memory peak the run pods are
sized from."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestration.instance_config import local_profile
from orchestration.settings import Settings
from tests.services.postgres import postgres_url  # noqa: F401 - fixture for the instance test

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"


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


def kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        message = "kubectl missing (make system-deps installs Debian's kubernetes-client)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def render_k8s() -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/k8s``: the objects `kubectl apply -k` would send."""
    proc = subprocess.run([kubectl(), "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [obj for obj in yaml.safe_load_all(proc.stdout) if obj]


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity as a number (bytes for memory, cores for CPU)."""
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|m|k|M|G|T|)", str(value).strip())
    assert match, f"not a Kubernetes quantity: {value!r}"
    number, suffix = float(match.group(1)), match.group(2)
    return number * (_BINARY.get(suffix) or _DECIMAL[suffix])


def measured_peak_bytes() -> float:
    """The highest peak RSS measured for the biggest report (the big institution's storyboard
    usage month, every warehouse engine): the "peak RSS MB" columns of the tables in
    docs/benchmarks.md "big institution on PostgreSQL"."""
    text = BENCHMARKS.read_text(encoding="utf-8")
    section = text.split("## big institution on PostgreSQL", 1)[1].split("\n## ", 1)[0]
    peaks: list[float] = []
    column: int | None = None
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if "peak RSS MB" in cells:
            column = cells.index("peak RSS MB")
        elif cells and column is not None and not set(cells[column]) <= set("-:"):
            peaks.append(float(cells[column].replace(",", "")))
        elif not cells:
            column = None
    assert len(peaks) >= 3, "no peak RSS found in docs/benchmarks.md"
    # benchmarks/report_scaling.py prints ru_maxrss (KiB on Linux) / 1024: the "MB" are MiB.
    return max(peaks) * 2**20
