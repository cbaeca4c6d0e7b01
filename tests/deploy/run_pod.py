"""The Kubernetes Job (hence the pod) a report run really gets, built by dagster-k8s itself.

``launch_report_run`` goes through ``K8sRunLauncher.launch_run`` of the pinned dagster-k8s,
unchanged: the launcher is made from the instance's ``run_launcher.config`` (the chart's
rendering, tests/deploy/chart.py, or deploy/dagster.k8s.yaml), validated against dagster-k8s's
own config schema; the run's origin carries the code location's ``container_context`` exactly as
the code server reports it (``dagster api grpc --container-context`` = the chart's
``DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT``, or nothing). ``K8sContainerContext.create_for_run``
then merges the launcher's settings with the code location's (the code location's win: dicts are
deep-merged key by key, scalars replaced, lists appended) and ``construct_dagster_k8s_job`` builds
the Job. The only stand-in is the Kubernetes API: a batch client that keeps the Job it is asked to
create instead of sending it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes
from dagster._config import process_config
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.test_utils import create_run_for_test, instance_for_test
from dagster_k8s import K8sRunLauncher
from dagster_k8s.job import DagsterK8sJobConfig

from assets.contract import TAG_REPORT, partition_job_name

# A batched monthly backfill run of the storyboard usage report (the biggest report,
# docs/benchmarks.md "big institution on PostgreSQL").
REPORT_ASSET = "storyboard_usage"
RUN_TAGS = {
    TAG_REPORT: "storyboard-usage",
    "dagster/backfill": "monthly",
    "dagster/asset_partition_range_start": "1|2026-11",
}

_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: not-a-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


class _KeepJobBatchApi:
    """Stands in for ``kubernetes.client.BatchV1Api``: keeps the Job instead of creating it."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, kubernetes.client.V1Job]] = []

    def create_namespaced_job(self, body: kubernetes.client.V1Job, namespace: str, **_: Any) -> None:
        self.jobs.append((namespace, body))


def launcher_from_config(config: dict[str, Any], tmp_path: Path, batch_api: Any) -> K8sRunLauncher:
    """A K8sRunLauncher from an instance's ``run_launcher.config``, as the instance would build it
    (same schema validation and defaults), but reading a throwaway kubeconfig instead of the
    in-cluster service-account token."""
    processed = process_config(DagsterK8sJobConfig.config_type_run_launcher(), config)
    assert processed.success, processed.errors
    value = dict(processed.value or {})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(_KUBECONFIG, encoding="utf-8")
    value.update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    return K8sRunLauncher(k8s_client_batch_api=batch_api, **value)


def launch_report_run(
    launcher_config: dict[str, Any],
    container_context: dict[str, Any] | None,
    image: str,
    tmp_path: Path,
) -> dict[str, Any]:
    """The Job dagster-k8s creates for one report run, as the API server would receive it (camelCase)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    batch_api = _KeepJobBatchApi()
    launcher = launcher_from_config(launcher_config, tmp_path, batch_api)
    origin = JobPythonOrigin(
        partition_job_name(REPORT_ASSET),
        RepositoryPythonOrigin(
            executable_path="/opt/venv/bin/python",
            code_pointer=ModuleCodePointer("orchestration.definitions", "defs", working_directory=None),
            container_image=image,
            container_context=container_context,
        ),
    )
    home = tmp_path / "instance"
    home.mkdir(exist_ok=True)
    with instance_for_test(temp_dir=str(home)) as instance:
        launcher.register_instance(instance)
        run = create_run_for_test(
            instance, job_name=partition_job_name(REPORT_ASSET), tags=RUN_TAGS, job_code_origin=origin
        )
        launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    ((namespace, job),) = batch_api.jobs
    rendered: dict[str, Any] = kubernetes.client.ApiClient().sanitize_for_serialization(job)
    rendered["metadata"]["namespace"] = namespace
    return rendered
