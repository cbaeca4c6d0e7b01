"""One way into the request ledger: no module outside ``orchestration.ledger`` touches its tables.

The import-linter contract in ``pyproject.toml`` checks the modules it lists; this
checks every module of the three packages, so a new one cannot slip past.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRIVATE = {"orchestration.ledger.schema", "orchestration.ledger.records"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_ledger_package_imports_the_ledger_tables() -> None:
    offenders = {}
    for package in ("api", "assets", "orchestration"):
        for path in (REPO / package).rglob("*.py"):
            relative = path.relative_to(REPO)
            if relative.parts[:2] == ("orchestration", "ledger"):
                continue
            if bad := _imports(path) & PRIVATE:
                offenders[str(relative)] = sorted(bad)
    assert offenders == {}
