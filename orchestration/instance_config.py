"""The Dagster instance configuration (``$DAGSTER_HOME/dagster.yaml``).

Embedded profile: SQLite storage under ``$LXP_HOME/dagster``, the queued run
coordinator (polling its queue every ``DEQUEUE_INTERVAL_SECONDS``) with a global
limit and a per-institution limit (so one huge institution cannot starve the
rest), and a pool limit on report steps.
Both single-host profiles use ``orchestration.run_launcher.LocalRunLauncher``
with run monitoring on: a run whose worker process died is failed (and its
requesters told) instead of staying STARTED for ever; the production one also
starts its code server's runs warm (``warm_code_server``).
The PostgreSQL profile is rendered by ``postgres_profile``; the Kubernetes profile
(K8s launcher, S3 compute logs) is ``deploy/dagster.k8s.yaml`` plus the Helm values, whose
run-queue limits tests/deploy checks against ``local_profile``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from assets.contract import INSTITUTION_DIMENSION, TAG_INSTITUTION, dagster_dimension_tag
from orchestration.settings import Settings

#: How often the daemon's run coordinator looks at the run queue. A queued run waits for the next look, so
#: this is added to every request's wait: Dagster's default of 5 s cost 2.5 s on average (up to 5 s) before
#: a run even started (docs/benchmarks.md, "Where a request's time goes"). Dagster's interval daemon sleeps
#: in 0.5 s steps and the setting is whole seconds, so 1 is the shortest useful value; each look is a few
#: indexed run-storage queries. deploy/dagster.k8s.yaml and the Helm values repeat it (tests/deploy).
DEQUEUE_INTERVAL_SECONDS = 1
#: How often the single-host profiles' daemon (``orchestration.dagster_daemon``, which builds the queue daemon
#: itself and so is not bound to whole seconds) looks, when ``dagster.yaml`` says ``DEQUEUE_INTERVAL_SECONDS``.
#: 0.5 s is the shortest without a busy loop (an interval daemon waits 0.5 s at least once per look), a period
#: of ≈ 0.55 s instead of ≈ 1.05 s: the queue phase's median fell from ≈ 0.75 to ≈ 0.4 s (12 requests each way,
#: a loaded machine; see ``orchestration.dagster_daemon``).
LOCAL_DEQUEUE_INTERVAL_SECONDS = 0.5


def _limits(settings: Settings) -> dict[str, Any]:
    per_institution = {"applyLimitPerUniqueValue": True}
    return {
        "concurrency": {
            "runs": {
                "max_concurrent_runs": settings.max_concurrent_runs,
                "tag_concurrency_limits": [
                    {"key": tag, "value": per_institution, "limit": settings.max_runs_per_institution}
                    for tag in (dagster_dimension_tag(INSTITUTION_DIMENSION), TAG_INSTITUTION)
                ],
            },
            "pools": {"default_limit": settings.max_concurrent_runs},
        },
        "telemetry": {"enabled": False},
    }


def _run_coordinator() -> dict[str, Any]:
    """Dagster's queued run coordinator (its default), dequeuing every ``DEQUEUE_INTERVAL_SECONDS``; the
    run limits stay under ``concurrency:`` (Dagster refuses them in both places)."""
    return {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"dequeue_interval_seconds": DEQUEUE_INTERVAL_SECONDS},
        }
    }


def _dump(config: dict[str, Any]) -> str:
    text: str = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    return text


def _monitoring(settings: Settings, *, warm_code_server: bool = False) -> dict[str, Any]:
    """The run launcher and run monitoring of a single-host instance (see ``orchestration.run_launcher``).

    ``warm_code_server``: the launcher also starts runs of a gRPC code server on loopback warm — right for the
    ``production`` profile, whose code server, daemon and run workers share one host and one environment
    (``topology.environment``); see the launcher's module docstring."""
    launcher: dict[str, Any] = {"module": "orchestration.run_launcher", "class": "LocalRunLauncher"}
    if warm_code_server:
        launcher["config"] = {"warm_code_server": True}
    return {
        "run_launcher": launcher,
        "run_monitoring": {
            "enabled": True,
            "poll_interval_seconds": settings.run_monitoring_seconds,
            "start_timeout_seconds": 180,  # STARTING longer than this: the worker never came up (or died then)
            "cancel_timeout_seconds": 180,  # CANCELING longer than this: mark it canceled
            "max_resume_run_attempts": 0,  # the default launcher cannot resume a run
        },
    }


def local_profile(settings: Settings) -> str:
    return _dump({**_run_coordinator(), **_monitoring(settings), **_limits(settings)})


def postgres_profile(settings: Settings, postgres_url_env: str = "DAGSTER_PG_URL", *, pool: bool = True) -> str:
    """Production instance: run/event/schedule storage in PostgreSQL (``pool``: see ``postgres_storage``).

    ``$DAGSTER_PG_URL`` must name the driver (``postgresql+psycopg2://...``):
    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which
    dagster-postgres does not support."""
    return _dump(
        {
            "storage": postgres_storage(postgres_url_env, pool=pool),
            **_run_coordinator(),
            **_monitoring(settings, warm_code_server=True),
            **compute_logs_config(settings),
            **_limits(settings),
        }
    )


def postgres_storage(postgres_url_env: str = "DAGSTER_PG_URL", *, pool: bool = True) -> dict[str, Any]:
    """Dagster's PostgreSQL storage with one pooled connection per engine and process
    (``orchestration.pg_storage``): unpooled, every storage call of the daemon and the run workers was a new
    server process, most of the server's CPU in the monthly backfill (docs/benchmarks.md, "Where the
    PostgreSQL server's CPU goes"). ``pool=False`` writes ``pool: false`` (Dagster's NullPool, a connection per
    storage call), for measuring what the pool saves."""
    config: dict[str, Any] = {"postgres_url": {"env": postgres_url_env}}
    if not pool:
        config["pool"] = False
    return {"custom": {"module": "orchestration.pg_storage", "class": "PooledPostgresStorage", "config": config}}


def compute_logs_config(settings: Settings) -> dict[str, Any]:
    """``compute_logs`` on S3 when ``LXP_COMPUTE_LOGS`` is ``s3://bucket/prefix`` (else nothing: Dagster's
    local default): in production a run's stdout/stderr must outlive the pod or process that ran it."""
    if not settings.compute_logs:
        return {}
    from orchestration.delivery.storage import parse_s3_location

    bucket, prefix = parse_s3_location(settings.compute_logs)
    config: dict[str, Any] = {"bucket": bucket, "prefix": prefix or "compute-logs", "skip_empty_files": True}
    if settings.s3_endpoint_url:
        config["endpoint_url"] = settings.s3_endpoint_url
    manager = {"module": "dagster_aws.s3.compute_log_manager", "class": "S3ComputeLogManager", "config": config}
    return {"compute_logs": manager}


SHARED_PROFILES = ("postgres", "production")


def ensure_instance(settings: Settings, profile: str = "local") -> Path:
    """Write dagster.yaml once (an operator's own edits are never overwritten) and
    create/migrate the instance storage in this one process: the webserver and
    the daemon starting together on a fresh SQLite home race on the schema and
    can leave two alembic heads behind."""
    import os

    import dagster as dg

    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if not path.exists():
        text = postgres_profile(settings) if profile in SHARED_PROFILES else local_profile(settings)
        path.write_text(text, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
        storage = type(instance.run_storage).__name__
    if profile in SHARED_PROFILES and storage != "PostgresRunStorage":
        # An embedded home reused for production would keep its SQLite files: refuse loudly.
        raise RuntimeError(f"{path} configures {storage}; the {profile} profile needs PostgreSQL storage")
    return path
