"""``deploy/dagster.k8s.yaml`` is a valid Dagster instance with dagster-k8s installed.

Two levels, both without a cluster:

* the file passes Dagster's own instance-config validation (``dagster_instance_config``,
  the schema every Dagster process applies to ``$DAGSTER_HOME/dagster.yaml``), and its
  run-queue limits are the embedded instance's (orchestration/instance_config.py);
* a real ``DagsterInstance`` is built from it against a real PostgreSQL server: the
  K8sRunLauncher, the S3 compute log manager and the queued run coordinator are
  instantiated from their config. The only stand-in is the in-cluster service-account
  token, which Kubernetes mounts at a fixed path in a pod: the loader is pointed at
  files in a temp dir instead (no API server is contacted when the launcher is built).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import kubernetes
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from kubernetes.config.incluster_config import InClusterConfigLoader

from tests.deploy.conftest import DEPLOY, reference_limits
from tests.services.postgres import create_database

K8S_INSTANCE = DEPLOY / "dagster.k8s.yaml"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(K8S_INSTANCE, home / "dagster.yaml")
    return home


def test_instance_file_passes_dagster_validation(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u:p@db.invalid:5432/dagster")
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", "lxp-dagster-logs")
    config, _ = dagster_instance_config(str(home))
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["run_launcher"]["module"] == "dagster_k8s"
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_run_queue_limits_mirror_the_embedded_instance() -> None:
    ours: dict[str, Any] = yaml.safe_load(K8S_INSTANCE.read_text(encoding="utf-8"))["concurrency"]
    assert ours == reference_limits()
    keys = {limit["key"] for limit in ours["runs"]["tag_concurrency_limits"]}
    assert keys == {"dagster/partition/institution", "lxp/institution"}


@pytest.mark.services
def test_instance_builds_its_launcher_storage_and_coordinator(
    home: Path, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = create_database(postgres_url).replace("postgresql://", "postgresql+psycopg2://", 1)
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", "lxp-dagster-logs")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("service-account-token", encoding="utf-8")
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", encoding="utf-8")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    monkeypatch.setattr(
        kubernetes.config,
        "load_incluster_config",
        lambda *args, **kwargs: InClusterConfigLoader(str(token), str(ca)).load_and_set(),
    )

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "K8sRunLauncher"
        assert launcher.job_namespace == "lxp-reports"
        assert launcher.instance_config_map == "dagster-instance"
        # Storage reads DAGSTER_PG_URL; no Secret that nothing reads is required by run pods.
        assert launcher.postgres_password_secret is None
        assert launcher.resources["limits"]["memory"] == "3Gi"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == reference_limits()["runs"]["max_concurrent_runs"]
        limits = {limit["key"]: limit["limit"] for limit in queue.tag_concurrency_limits}
        assert limits == {"dagster/partition/institution": 1, "lxp/institution": 1}
        assert instance.get_runs(limit=1) == []  # the schema was created in PostgreSQL
