"""The pod a report run really gets on Kubernetes, built by dagster-k8s from our deploy files.

Two ways to deploy the instance, one run pod each (tests/deploy/run_pod.py launches a run with the
pinned dagster-k8s ``K8sRunLauncher`` and keeps the Job it would create):

* ``helm``: the run launcher the official chart renders from deploy/helm/dagster-values.yaml, and
  the container context our user-code deployment passes to its runs (tests/deploy/chart.py);
* ``instance-file``: the run launcher of deploy/dagster.k8s.yaml, with the same code location.

Checked: memory sized from the measured peak (docs/benchmarks.md), CPU/memory requests, the
settings and channel secrets by reference only, LXP_ENV=production, Pod Security "restricted"
with a read-only root filesystem, and the strict Kubernetes schema of the Job. The last tests pin
down the merge that made every run pod inherit the code server's 1 GiB limit.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy import chart
from tests.deploy.conftest import DEPLOY, ROOT, measured_peak_bytes, quantity
from tests.deploy.pss import restricted_violations
from tests.deploy.run_pod import launch_report_run
from tests.deploy.test_k8s_manifests import KUBERNETES_VERSION

SOURCES = ["helm", "instance-file"]
RUN_CONFIG_MAP = "lxp-reports-run-config"
RUN_SECRET = "lxp-reports-run-secrets"
# What a run needs to build, store and (soon) deliver a report, and where it comes from:
# the non-secret ConfigMap, or the Secret (docs/operations.md "Secrets").
RUN_SETTINGS_FROM_CONFIG_MAP = {"LXP_NOTIFY_URL", "LXP_STORAGE", "DAGSTER_COMPUTE_LOG_BUCKET"}
RUN_SECRETS = {
    "DAGSTER_PG_URL",
    "LXP_WAREHOUSE_URL",
    "LXP_LEDGER_URL",
    "LXP_LINK_SECRET",
    "LXP_NOTIFY_SECRET",
    "LXP_SMTP_URL",
}
# Names that must never carry a literal value in a pod spec.
SECRET_NAMES = RUN_SECRETS | {"DAGSTER_PG_PASSWORD", "LXP_JWT_SECRET", "LXP_RATE_LIMIT_STORAGE", "LXP_METRICS_TOKEN"}
WRITABLE_PATHS = {"/tmp", chart.DAGSTER_HOME}


def _launcher_config(source: str, values: dict[str, Any]) -> dict[str, Any]:
    if source == "helm":
        return chart.run_launcher_config(values)
    instance = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text(encoding="utf-8"))
    return dict(instance["run_launcher"]["config"])


def build_run_job(source: str, values: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    (deployment,) = chart.user_deployments(values)
    return launch_report_run(
        _launcher_config(source, values),
        chart.code_location_container_context(values, deployment),
        chart.user_code_image(deployment),
        tmp_path,
    )


@pytest.fixture(scope="module")
def run_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    values = chart.load_values()
    return {source: build_run_job(source, values, tmp_path_factory.mktemp(source)) for source in SOURCES}


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def _container(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(job)["containers"]
    return dict(container)


@pytest.mark.parametrize("source", SOURCES)
def test_run_pod_memory_is_over_twice_the_measured_peak(source: str, run_jobs: dict[str, dict[str, Any]]) -> None:
    resources = _container(run_jobs[source])["resources"]
    peak = measured_peak_bytes()  # ~1.39 GiB, the big institution's month
    assert quantity(resources["limits"]["memory"]) >= 2 * peak, resources
    # The scheduler reserves the peak: a node under pressure does not evict a run mid-month.
    assert quantity(resources["requests"]["memory"]) >= peak, resources
    assert quantity(resources["requests"]["cpu"]) >= 1 and quantity(resources["limits"]["cpu"]) >= 1, resources
    assert quantity(resources["requests"]["cpu"]) <= quantity(resources["limits"]["cpu"])


@pytest.mark.parametrize("source", SOURCES)
def test_run_pod_gets_settings_and_secrets_by_reference(source: str, run_jobs: dict[str, dict[str, Any]]) -> None:
    container = _container(run_jobs[source])
    env = {e["name"]: e for e in container["env"]}
    for name in SECRET_NAMES & set(env):
        assert "value" not in env[name] and "secretKeyRef" in env[name]["valueFrom"], env[name]
    assert env["LXP_ENV"]["value"] == "production"
    assert env["DAGSTER_HOME"]["value"] == chart.DAGSTER_HOME
    sources = container["envFrom"]
    assert {"secretRef": {"name": RUN_SECRET}} in sources
    assert {"configMapRef": {"name": RUN_CONFIG_MAP}} in sources
    # No secret-looking literal anywhere in the pod (args carry only the serialized run origin).
    text = json.dumps(run_jobs[source])
    assert not re.search(r"postgres(ql)?(\+\w+)?://[^\"@]*:[^\"@]*@", text), "a database URL with a password"


def test_the_operations_guide_lists_what_run_pods_need() -> None:
    """The run pod reads the channel settings from the Secret and ConfigMap as a whole (envFrom):
    what they must hold is written in docs/operations.md "Resources and Pod Security"."""
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = guide.split("## Resources and Pod Security", 1)[1].split("\n## ", 1)[0]
    for name in RUN_SECRETS | RUN_SETTINGS_FROM_CONFIG_MAP | {RUN_SECRET, RUN_CONFIG_MAP}:
        assert f"`{name}`" in section, name


def test_dagster_password_secret_only_where_the_instance_reads_it(run_jobs: dict[str, dict[str, Any]]) -> None:
    """The chart's instance stores Dagster's data with ``password: {env: DAGSTER_PG_PASSWORD}``, and
    its run launcher always names that Secret; deploy/dagster.k8s.yaml reads DAGSTER_PG_URL from
    the run Secret and names no other one (a required Secret nothing reads blocks every run pod)."""
    helm = {e["name"]: e for e in _container(run_jobs["helm"])["env"]}
    ref = helm["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "dagster-postgresql-secret", "key": "postgresql-password"}
    plain = {e["name"] for e in _container(run_jobs["instance-file"])["env"]}
    assert "DAGSTER_PG_PASSWORD" not in plain
    instance = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text(encoding="utf-8"))
    assert "postgres_password_secret" not in instance["run_launcher"]["config"]
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}


@pytest.mark.parametrize("source", SOURCES)
def test_run_pod_is_restricted_with_a_read_only_root(source: str, run_jobs: dict[str, dict[str, Any]]) -> None:
    pod = _pod(run_jobs[source])
    assert restricted_violations(pod) == []
    container = _container(run_jobs[source])
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] != 0
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert set(mounts) >= WRITABLE_PATHS
    for path in WRITABLE_PATHS:
        assert "emptyDir" in volumes[mounts[path]], volumes[mounts[path]]


@pytest.mark.parametrize("source", SOURCES)
def test_run_job_passes_the_kubernetes_schema(source: str, run_jobs: dict[str, dict[str, Any]]) -> None:
    job = run_jobs[source]
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    assert job["metadata"]["namespace"] == chart.NAMESPACE
    (deployment,) = chart.user_deployments(chart.load_values())
    assert _container(job)["image"] == chart.user_code_image(deployment)


def test_run_pod_reads_what_the_code_server_reads() -> None:
    """Both run our code (sensors in the code server, reports in runs): same settings sources."""
    values = chart.load_values()
    (deployment,) = chart.user_deployments(values)
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envSecrets"] == deployment["envSecrets"]
    assert launcher["envConfigMaps"] == deployment["envConfigMaps"]
    code_server_env = {e["name"]: e["value"] for e in deployment["env"]}
    run_env = dict(item.split("=", 1) for item in launcher["envVars"])
    assert code_server_env == run_env


# --- the merge that broke it ------------------------------------------------------------------


def _with_code_location_config(values: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    changed["dagster-user-deployments"]["deployments"][0]["includeConfigInLaunchedRuns"] = {"enabled": True}
    return changed


def test_included_code_location_config_would_cap_runs_at_the_code_server_limit(tmp_path: Path) -> None:
    """Why ``includeConfigInLaunchedRuns`` is off: dagster-k8s merges the code location's container
    context over the run launcher's settings, so the code server's resources win. With it on, a
    run pod got the code server's limits (1 CPU / 1 GiB: OOM for the big month), and neither the
    launcher's ``resources`` nor its ``runK8sConfig.containerConfig.resources`` could raise them."""
    values = _with_code_location_config(chart.load_values())
    (deployment,) = chart.user_deployments(values)
    code_server = deployment["resources"]
    job = build_run_job("helm", values, tmp_path / "on")
    assert _container(job)["resources"] == code_server
    assert quantity(code_server["limits"]["memory"]) < 2 * measured_peak_bytes()

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher.setdefault("runK8sConfig", {})["containerConfig"] = {
        **launcher["runK8sConfig"].get("containerConfig", {}),
        "resources": launcher["resources"],
    }
    job = build_run_job("helm", values, tmp_path / "run-k8s-config")
    assert _container(job)["resources"]["limits"] == code_server["limits"]
