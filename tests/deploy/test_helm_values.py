"""``deploy/helm/dagster-values.yaml`` loads as YAML and names only keys the official Dagster
chart documents, with the settings our deployment depends on.

The chart's full ``values.schema.json`` is NOT vendored: it is a generated, ~200 kB file of
another project that changes with every Dagster release, and nothing here could render the
chart anyway (no helm binary, no cluster). Instead ``DOCUMENTED`` below lists every key path
we use, each with the chart section that documents it (``helm/dagster/values.yaml`` of
dagster-io/dagster at the release pinned in constraints.txt, and the pydantic models its
``values.schema.json`` is generated from, ``helm/dagster/schema/schema/charts/...``). A key
outside the list (a typo, or a key the chart does not have) fails the test; adding a key
means checking the chart and adding it here with its source.

Paths: ``a.b`` for mappings, ``a[]`` for list items; a path in ``OPAQUE`` is a Kubernetes
object or free-form map that the chart passes through (its content is Kubernetes', not the
chart's, vocabulary), so the walk stops there.
"""

from __future__ import annotations

import tomllib
from typing import Any

import yaml

from orchestration.instance_config import DEQUEUE_INTERVAL_SECONDS
from tests.deploy.conftest import DEPLOY, ROOT, reference_limits

VALUES = DEPLOY / "helm" / "dagster-values.yaml"

_UD = "dagster-user-deployments"  # charts/dagster-user-deployments (subchart), schema UserDeployment
_K8S_RL = "runLauncher.config.k8sRunLauncher"  # subschema/run_launcher.py K8sRunLauncherConfig
_S3 = "computeLogManager.config.s3ComputeLogManager"  # subschema/compute_log_manager.py S3ComputeLogManager
# Kubernetes objects the webserver and daemon Deployments take (same names in Webserver and Daemon).
_POD_KEYS = ("podSecurityContext", "securityContext", "resources", "initContainerResources", "volumes", "volumeMounts")

DOCUMENTED: dict[str, str] = {
    # subschema/global_.py Global; values.yaml "global"
    "global.postgresqlSecretName": "Global.postgresqlSecretName (external Secret, key postgresql-password)",
    "global.serviceAccountName": "Global.serviceAccountName",
    # values.py DagsterHelmValues
    "generatePostgresqlPasswordSecret": "DagsterHelmValues.generatePostgresqlPasswordSecret",
    # subschema/postgresql.py PostgreSQL; values.yaml "postgresql"
    "postgresql.enabled": "PostgreSQL.enabled (false = external database)",
    "postgresql.postgresqlHost": "PostgreSQL.postgresqlHost",
    "postgresql.postgresqlUsername": "PostgreSQL.postgresqlUsername",
    "postgresql.postgresqlDatabase": "PostgreSQL.postgresqlDatabase",
    "postgresql.postgresqlParams": "PostgreSQL.postgresqlParams (libpq query parameters)",
    "postgresql.service.port": "PostgreSQL.service.port",
    # dagster_user_deployments/subschema/user_deployments.py UserDeployments / UserDeployment
    f"{_UD}.enabled": "UserDeployments.enabled",
    f"{_UD}.enableSubchart": "UserDeployments.enableSubchart",
    f"{_UD}.deployments[].name": "UserDeployment.name",
    f"{_UD}.deployments[].image.repository": "kubernetes.Image.repository",
    f"{_UD}.deployments[].image.tag": "kubernetes.Image.tag",
    f"{_UD}.deployments[].image.pullPolicy": "kubernetes.Image.pullPolicy",
    f"{_UD}.deployments[].dagsterApiGrpcArgs": "UserDeployment.dagsterApiGrpcArgs (args of `dagster api grpc`)",
    f"{_UD}.deployments[].port": "UserDeployment.port",
    f"{_UD}.deployments[].includeConfigInLaunchedRuns.enabled": "UserDeployment.includeConfigInLaunchedRuns",
    f"{_UD}.deployments[].env": "UserDeployment.env (list of kubernetes EnvVar)",
    f"{_UD}.deployments[].envConfigMaps[].name": "UserDeployment.envConfigMaps (ConfigMapEnvSource)",
    f"{_UD}.deployments[].envSecrets[].name": "UserDeployment.envSecrets (SecretEnvSource)",
    f"{_UD}.deployments[].podSecurityContext": "UserDeployment.podSecurityContext",
    f"{_UD}.deployments[].securityContext": "UserDeployment.securityContext",
    f"{_UD}.deployments[].resources": "UserDeployment.resources",
    f"{_UD}.deployments[].labels": "UserDeployment.labels",
    f"{_UD}.deployments[].volumes": "UserDeployment.volumes (list of kubernetes Volume)",
    f"{_UD}.deployments[].volumeMounts": "UserDeployment.volumeMounts (list of kubernetes VolumeMount)",
    # subschema/run_launcher.py RunLauncher / K8sRunLauncherConfig
    "runLauncher.type": "RunLauncher.type (K8sRunLauncher)",
    f"{_K8S_RL}.imagePullPolicy": "K8sRunLauncherConfig.imagePullPolicy",
    f"{_K8S_RL}.loadInclusterConfig": "K8sRunLauncherConfig.loadInclusterConfig",
    f"{_K8S_RL}.envConfigMaps[].name": "K8sRunLauncherConfig.envConfigMaps",
    f"{_K8S_RL}.envSecrets[].name": "K8sRunLauncherConfig.envSecrets",
    f"{_K8S_RL}.envVars": "K8sRunLauncherConfig.envVars",
    f"{_K8S_RL}.volumeMounts": "K8sRunLauncherConfig.volumeMounts",
    f"{_K8S_RL}.volumes": "K8sRunLauncherConfig.volumes",
    f"{_K8S_RL}.labels": "K8sRunLauncherConfig.labels",
    f"{_K8S_RL}.failPodOnRunFailure": "K8sRunLauncherConfig.failPodOnRunFailure",
    f"{_K8S_RL}.resources": "K8sRunLauncherConfig.resources",
    f"{_K8S_RL}.runK8sConfig.podSpecConfig": "RunK8sConfig.podSpecConfig",
    f"{_K8S_RL}.runK8sConfig.containerConfig": "RunK8sConfig.containerConfig",
    # subschema/compute_log_manager.py ComputeLogManager / S3ComputeLogManager
    "computeLogManager.type": "ComputeLogManager.type (S3ComputeLogManager)",
    f"{_S3}.bucket": "S3ComputeLogManager.bucket",
    f"{_S3}.prefix": "S3ComputeLogManager.prefix",
    f"{_S3}.region": "S3ComputeLogManager.region",
    f"{_S3}.uploadInterval": "S3ComputeLogManager.uploadInterval",
    f"{_S3}.skipEmptyFiles": "S3ComputeLogManager.skipEmptyFiles",
    # subschema/webserver.py Webserver; templates/helpers/_deployment-webserver.tpl
    **{f"dagsterWebserver.{key}": f"Webserver.{key}" for key in _POD_KEYS},
    # subschema/daemon.py Daemon / RunCoordinator / QueuedRunCoordinatorConfig; templates/deployment-daemon.yaml
    "dagsterDaemon.enabled": "Daemon.enabled",
    **{f"dagsterDaemon.{key}": f"Daemon.{key}" for key in _POD_KEYS},
    "dagsterDaemon.runCoordinator.enabled": "RunCoordinator.enabled",
    "dagsterDaemon.runCoordinator.type": "RunCoordinator.type (QueuedRunCoordinator)",
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.dequeueIntervalSeconds": (
        "QueuedRunCoordinatorConfig.dequeueIntervalSeconds"
    ),
    # Daemon.runMonitoring, rendered by templates/configmap-instance.yaml run_monitoring
    "dagsterDaemon.runMonitoring.enabled": "Daemon.runMonitoring.enabled",
    "dagsterDaemon.runMonitoring.startTimeoutSeconds": "Daemon.runMonitoring.startTimeoutSeconds",
    "dagsterDaemon.runMonitoring.maxResumeRunAttempts": "Daemon.runMonitoring.maxResumeRunAttempts",
    "dagsterDaemon.runMonitoring.pollIntervalSeconds": "Daemon.runMonitoring.pollIntervalSeconds",
    # subschema/concurrency.py Concurrency; templates/helpers/instance/_concurrency.tpl
    "concurrency.enabled": "Concurrency.enabled",
    "concurrency.runs.maxConcurrentRuns": "ConcurrencyRuns.maxConcurrentRuns",
    "concurrency.runs.tagConcurrencyLimits[].key": "TagConcurrencyLimit.key",
    "concurrency.runs.tagConcurrencyLimits[].value.applyLimitPerUniqueValue": "TagConcurrencyLimit.value",
    "concurrency.runs.tagConcurrencyLimits[].limit": "TagConcurrencyLimit.limit",
    "concurrency.pools.defaultLimit": "ConcurrencyPools.defaultLimit",
    # subschema/telemetry.py Telemetry
    "telemetry.enabled": "Telemetry.enabled",
}

# Kubernetes objects / free-form maps passed through by the chart: the walk stops here.
OPAQUE = {
    "postgresql.postgresqlParams",
    f"{_UD}.deployments[].env",
    f"{_UD}.deployments[].podSecurityContext",
    f"{_UD}.deployments[].securityContext",
    f"{_UD}.deployments[].resources",
    f"{_UD}.deployments[].labels",
    f"{_UD}.deployments[].volumes",
    f"{_UD}.deployments[].volumeMounts",
    f"{_K8S_RL}.labels",
    f"{_K8S_RL}.resources",
    f"{_K8S_RL}.volumes",
    f"{_K8S_RL}.volumeMounts",
    f"{_K8S_RL}.runK8sConfig.podSpecConfig",
    f"{_K8S_RL}.runK8sConfig.containerConfig",
    *(f"{component}.{key}" for component in ("dagsterWebserver", "dagsterDaemon") for key in _POD_KEYS),
}


def key_paths(node: Any, prefix: str = "") -> set[str]:
    """Every leaf key path of ``node`` (stopping at ``OPAQUE`` paths)."""
    if prefix in OPAQUE:
        return {prefix}
    if isinstance(node, dict):
        if not node:
            return {prefix}
        paths: set[str] = set()
        for key, value in node.items():
            paths |= key_paths(value, f"{prefix}.{key}" if prefix else str(key))
        return paths
    if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        return set().union(*(key_paths(item, f"{prefix}[]") for item in node))
    return {prefix}


def _values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_values_name_only_documented_keys() -> None:
    used = key_paths(_values())
    undocumented = sorted(used - set(DOCUMENTED))
    assert not undocumented, f"keys the chart does not document (or missing from DOCUMENTED): {undocumented}"
    assert set(OPAQUE) <= set(DOCUMENTED)


def test_key_check_catches_a_typo() -> None:
    values = _values()
    values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamepsace"] = "lxp-reports"
    assert f"{_K8S_RL}.jobNamepsace" in key_paths(values) - set(DOCUMENTED)


def test_user_code_deployment_runs_our_grpc_server_from_our_image() -> None:
    values = _values()
    (deployment,) = values[_UD]["deployments"]
    module = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"][:2] == ["-m", module]
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text(encoding="utf-8"))
    (image,) = kustomization["images"]
    assert deployment["image"]["repository"] == image["newName"]
    assert str(deployment["image"]["tag"]) == str(image["newTag"])
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    # Runs take their pod from runLauncher only (tests/deploy/test_run_pods.py shows why).
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": False}


def test_instance_settings_match_the_k8s_instance_file() -> None:
    """The chart's run launcher and deploy/dagster.k8s.yaml's give a run the same pod."""
    values = _values()
    instance = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text(encoding="utf-8"))
    assert values["runLauncher"]["type"] == instance["run_launcher"]["class"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = instance["run_launcher"]["config"]
    assert [s["name"] for s in launcher["envSecrets"]] == config["env_secrets"]
    assert [c["name"] for c in launcher["envConfigMaps"]] == config["env_config_maps"]
    assert launcher["envVars"] == config["env_vars"]
    assert launcher["resources"] == config["resources"]
    assert launcher["volumes"] == config["volumes"] and launcher["volumeMounts"] == config["volume_mounts"]
    assert launcher["runK8sConfig"]["podSpecConfig"] == config["run_k8s_config"]["pod_spec_config"]
    assert launcher["runK8sConfig"]["containerConfig"] == config["run_k8s_config"]["container_config"]
    assert values["computeLogManager"]["type"] == instance["compute_logs"]["class"] == "S3ComputeLogManager"
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False


def test_dequeue_interval_is_the_instance_profiles() -> None:
    """A queued run waits up to this for the daemon; the chart, the K8s and PostgreSQL instance files and
    ``instance_config`` (embedded and production profiles) say the same."""
    queued = _values()["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    k8s = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text(encoding="utf-8"))["run_coordinator"]
    postgres = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text(encoding="utf-8"))["run_coordinator"]
    assert queued["dequeueIntervalSeconds"] == DEQUEUE_INTERVAL_SECONDS
    assert k8s["config"]["dequeue_interval_seconds"] == DEQUEUE_INTERVAL_SECONDS
    assert postgres["config"]["dequeue_interval_seconds"] == DEQUEUE_INTERVAL_SECONDS


def test_run_queue_limits_mirror_the_embedded_instance() -> None:
    values = _values()
    expected = reference_limits()
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    runs = concurrency["runs"]
    assert runs["maxConcurrentRuns"] == expected["runs"]["max_concurrent_runs"]
    assert runs["tagConcurrencyLimits"] == expected["runs"]["tag_concurrency_limits"]
    assert concurrency["pools"]["defaultLimit"] == expected["pools"]["default_limit"]
    # The chart refuses limits set both here and on the queued run coordinator.
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert not {"maxConcurrentRuns", "tagConcurrencyLimits"} & set(queued)
