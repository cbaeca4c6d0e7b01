"""A one-asset code location, so tests of the gRPC code-server plumbing do not pay
for loading every report (tests/orchestration/test_topology.py)."""

import dagster as dg


@dg.asset
def tiny() -> int:
    return 1


defs = dg.Definitions(assets=[tiny])
