"""One summary line per reliability scenario (``RELIABILITY <scenario>: k=v, ...``).

The lines are printed as they happen (visible with ``-s``) and repeated at the end of
the run in a "reliability figures" section, so docs/reliability.md can be filled
from any `make test` output.
"""

from __future__ import annotations

LINES: list[str] = []


def summary(scenario: str, **figures: object) -> str:
    line = f"RELIABILITY {scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items())
    LINES.append(line)
    print(line)
    return line
