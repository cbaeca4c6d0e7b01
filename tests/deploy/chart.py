"""What the official Dagster Helm chart renders from ``deploy/helm/dagster-values.yaml``: the
pieces our checks need, written down once, with where each comes from.

There is no ``helm`` binary here (and no network to fetch one), so the chart cannot be rendered.
Instead each function below mirrors one template of the chart, field by field, for the values we
use. The source is the chart in dagster-io/dagster under ``helm/dagster/`` (the chart version is
the Dagster version pinned in constraints.txt, see ``chart_version()``); the template files, as
read for this module (commits of dagster-io/dagster master, 2025-2026; the templates below have
kept these fields through the 1.x releases):

* user-code Deployment: ``charts/dagster-user-deployments/templates/deployment-user.yaml``
  (pod ``securityContext`` = ``podSecurityContext``; container ``securityContext``,
  ``resources``, ``env`` list, ``envConfigMaps``/``envSecrets`` as ``envFrom``, ``volumes``,
  ``volumeMounts`` passed through; ``DAGSTER_PG_PASSWORD`` from ``global.postgresqlSecretName``;
  when ``includeConfigInLaunchedRuns.enabled`` (default **true**) the env var
  ``DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT`` = the JSON of the helper below);
* the code location's container context: ``define "dagsterUserDeployments.k8sContainerContext"``
  in ``charts/dagster-user-deployments/templates/helpers/_helpers.tpl`` (image_pull_policy,
  env_config_maps = ``<fullname>-<name>-user-env`` + envConfigMaps, env_secrets, volume_mounts,
  volumes, labels, **resources**, namespace, service_account_name, env,
  ``run_k8s_config.pod_spec_config.automount_service_account_token: true``). ``dagster api grpc``
  reads that env var as ``--container-context`` and puts it on the repository origin of every
  run it creates; ``dagster_k8s.K8sContainerContext.create_for_run`` then merges it OVER the run
  launcher's settings (see tests/deploy/run_pod.py);
* the instance's ``run_launcher``: ``define "dagsterYaml.runLauncher.k8s"`` in
  ``templates/helpers/instance/_run-launcher.tpl`` (``postgres_password_secret`` is always
  rendered from ``global.postgresqlSecretName``; ``dagster_home`` = ``global.dagsterHome``;
  ``instance_config_map`` = ``<fullname>-instance``; envConfigMaps/envSecrets reduced to names;
  envVars, volumes, volumeMounts, labels, resources, failPodOnRunFailure, securityContext and
  runK8sConfig.{containerConfig, podSpecConfig, ...} passed through in snake_case keys);
* webserver Deployment: ``templates/helpers/_deployment-webserver.tpl`` (``define
  "deployment-webserver"``); daemon Deployment: ``templates/deployment-daemon.yaml``. Both take
  ``podSecurityContext``, ``securityContext`` (also given to their init containers),
  ``resources``, ``initContainerResources``, ``volumes``, ``volumeMounts``, ``env`` (list),
  ``envConfigMaps``, ``envSecrets``; both mount the instance ConfigMap at
  ``$DAGSTER_HOME/dagster.yaml`` (subPath) and the workspace ConfigMap at ``/dagster-workspace/``.
  Their init containers (``check-db-ready`` with the PostgreSQL image, and one
  ``init-user-deployment-<name>`` busybox per user deployment) are modelled as always present:
  some chart releases make ``check-db-ready`` conditional, and counting it is the stricter case
  for the Pod Security check.

Key names are the chart's (checked against its schema in tests/deploy/test_helm_values.py); pod
objects are returned in Kubernetes' own camelCase, as the API server would receive them.
Labels, annotations, probes, images and commands are left out where no check reads them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "helm" / "dagster-values.yaml"

# `helm upgrade --install dagster dagster/dagster --namespace lxp-reports` (docs/operations.md)
RELEASE = "dagster"
NAMESPACE = "lxp-reports"
# define "dagster.fullname": the release name contains the chart name "dagster" -> the release name.
FULLNAME = "dagster"
# values.yaml global.dagsterHome (chart default; not overridden by our values).
DAGSTER_HOME = "/opt/dagster/dagster_home"
# values.yaml defaults of the images the chart brings (only their names are used here).
WEBSERVER_IMAGE_REPOSITORY = "docker.io/dagster/dagster-celery-k8s"
POSTGRES_IMAGE = "docker.io/library/postgres:14.6"
BUSYBOX_IMAGE = "docker.io/library/busybox:1.28"


def chart_version() -> str:
    """The chart version: the pinned ``dagster`` release (the chart is released with it)."""
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name.strip().lower() == "dagster":
            return version.strip()
    raise AssertionError("dagster is not pinned in constraints.txt")


def load_values(path: Path = VALUES) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _global(values: dict[str, Any]) -> dict[str, Any]:
    return dict(values.get("global") or {})


def _service_account(values: dict[str, Any]) -> str:
    # define "dagster.serviceAccountName" / "dagsterUserDeployments.serviceAccountName":
    # global.serviceAccountName wins.
    return str(_global(values).get("serviceAccountName") or f"{FULLNAME}")


def _pg_secret(values: dict[str, Any]) -> str:
    # define "dagster.postgresql.secretName": global.postgresqlSecretName (or the generated one).
    return str(_global(values).get("postgresqlSecretName") or f"{FULLNAME}-postgresql-secret")


def _pg_password_env(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "DAGSTER_PG_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": _pg_secret(values), "key": "postgresql-password"}},
    }


def _names(sources: list[dict[str, Any]] | None) -> list[str]:
    return [source["name"] for source in sources or [] if "name" in source]


def _env_from(config_maps: list[dict[str, Any]] | None, secrets: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{"configMapRef": dict(c)} for c in config_maps or []] + [{"secretRef": dict(s)} for s in secrets or []]


def _env_list(env: Any) -> list[dict[str, Any]]:
    # A list is put on the container as is; a map goes to a chart-made ConfigMap instead.
    return copy.deepcopy(env) if isinstance(env, list) else []


# --- user code (the gRPC code server of our image) ----------------------------------------------


def user_deployments(values: dict[str, Any]) -> list[dict[str, Any]]:
    section = values.get("dagster-user-deployments") or {}
    if not (section.get("enabled") and section.get("enableSubchart")):
        return []
    return list(section.get("deployments") or [])


def user_code_image(deployment: dict[str, Any]) -> str:
    # define "dagster.dagsterImage.name": repository:tag (tag defaults to the chart version).
    image = deployment["image"]
    return f"{image['repository']}:{image.get('tag') or chart_version()}"


def includes_config_in_launched_runs(deployment: dict[str, Any]) -> bool:
    # deployment-user.yaml: `$deployment.includeConfigInLaunchedRuns | default (dict "enabled" true)`
    return bool((deployment.get("includeConfigInLaunchedRuns") or {"enabled": True}).get("enabled"))


def code_location_container_context(values: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any] | None:
    """The ``container_context`` the code server puts on every run's origin, or None when the
    deployment does not include its config in launched runs (then the env var is not set)."""
    if not includes_config_in_launched_runs(deployment):
        return None
    k8s: dict[str, Any] = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [f"{FULLNAME}-{deployment['name']}-user-env", *_names(deployment.get("envConfigMaps"))],
    }
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = _names(deployment["envSecrets"])
    for key, target in (
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
    ):
        if deployment.get(key):
            k8s[target] = copy.deepcopy(deployment[key])
    k8s["namespace"] = NAMESPACE
    k8s["service_account_name"] = _service_account(values)
    if isinstance(deployment.get("env"), list) and deployment["env"]:
        k8s["env"] = copy.deepcopy(deployment["env"])
    k8s["run_k8s_config"] = {"pod_spec_config": {"automount_service_account_token": True}}
    return {"k8s": k8s}


def code_server_pod(values: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of the user-code Deployment (deployment-user.yaml)."""
    env: list[dict[str, Any]] = [
        {"name": "DAGSTER_CURRENT_IMAGE", "value": user_code_image(deployment)},
        _pg_password_env(values),
    ]
    context = code_location_container_context(values, deployment)
    if context is not None:
        env.append({"name": "DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT", "value": json.dumps(context)})
    env += _env_list(deployment.get("env"))
    container: dict[str, Any] = {
        "name": "dagster-user-deployments",
        "securityContext": copy.deepcopy(deployment.get("securityContext") or {}),
        "imagePullPolicy": deployment["image"]["pullPolicy"],
        "image": user_code_image(deployment),
        "args": ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", str(deployment["port"])]
        + list(deployment.get("dagsterApiGrpcArgs") or []),
        "env": env,
        "envFrom": [
            {"configMapRef": {"name": f"{FULLNAME}-user-deployments-shared-env"}},
            {"configMapRef": {"name": f"{FULLNAME}-{deployment['name']}-user-env"}},
            *_env_from(deployment.get("envConfigMaps"), deployment.get("envSecrets")),
        ],
        "resources": copy.deepcopy(deployment.get("resources") or {}),
    }
    if deployment.get("volumeMounts"):
        container["volumeMounts"] = copy.deepcopy(deployment["volumeMounts"])
    pod: dict[str, Any] = {
        "serviceAccountName": _service_account(values),
        "automountServiceAccountToken": True,
        "securityContext": copy.deepcopy(deployment.get("podSecurityContext") or {}),
        "containers": [container],
    }
    if deployment.get("volumes"):
        pod["volumes"] = copy.deepcopy(deployment["volumes"])
    return pod


# --- the instance's run launcher ---------------------------------------------------------------

_RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


def run_launcher_config(values: dict[str, Any]) -> dict[str, Any]:
    """``run_launcher.config`` of the instance ConfigMap (``dagsterYaml.runLauncher.k8s``)."""
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config: dict[str, Any] = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": _service_account(values),
        "dagster_home": DAGSTER_HOME,
        "instance_config_map": f"{FULLNAME}-instance",
        "postgres_password_secret": _pg_secret(values),
    }
    if k8s.get("envConfigMaps"):
        config["env_config_maps"] = _names(k8s["envConfigMaps"])
    if k8s.get("envSecrets"):
        config["env_secrets"] = _names(k8s["envSecrets"])
    for key, target in (
        ("envVars", "env_vars"),
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
        ("schedulerName", "scheduler_name"),
        ("securityContext", "security_context"),
    ):
        if k8s.get(key):
            config[target] = copy.deepcopy(k8s[key])
    if k8s.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    if k8s.get("runK8sConfig"):
        config["run_k8s_config"] = {
            target: copy.deepcopy(k8s["runK8sConfig"][key])
            for key, target in _RUN_K8S_CONFIG_KEYS.items()
            if k8s["runK8sConfig"].get(key)
        }
    return config


# --- webserver and daemon (Dagster's own image) ------------------------------------------------


def _init_containers(values: dict[str, Any], component: dict[str, Any]) -> list[dict[str, Any]]:
    security = copy.deepcopy(component.get("securityContext") or {})
    resources = copy.deepcopy(component.get("initContainerResources") or {})
    inits: list[dict[str, Any]] = [
        {
            "name": "check-db-ready",
            "image": POSTGRES_IMAGE,
            "command": ["sh", "-c", "until pg_isready -h $HOST -p 5432 -U dagster; do sleep 2; done"],
            "securityContext": security,
        }
    ]
    for deployment in user_deployments(values):
        inits.append(
            {
                "name": f"init-user-deployment-{deployment['name']}",
                "image": BUSYBOX_IMAGE,
                "command": ["sh", "-c", f"until nslookup {deployment['name']}; do sleep 2; done"],
                "securityContext": copy.deepcopy(security),
            }
        )
    if resources:
        for init in inits:
            init["resources"] = copy.deepcopy(resources)
    return inits


def _dagster_pod(
    values: dict[str, Any], component: dict[str, Any], env_config_map: str, extra_env: list[dict[str, Any]]
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "dagster",
        "securityContext": copy.deepcopy(component.get("securityContext") or {}),
        "image": f"{WEBSERVER_IMAGE_REPOSITORY}:{chart_version()}",
        "env": [_pg_password_env(values), *extra_env, *_env_list(component.get("env"))],
        "envFrom": [
            {"configMapRef": {"name": env_config_map}},
            *_env_from(component.get("envConfigMaps"), component.get("envSecrets")),
        ],
        "volumeMounts": [
            {"name": "dagster-instance", "mountPath": f"{DAGSTER_HOME}/dagster.yaml", "subPath": "dagster.yaml"},
            {"name": "dagster-workspace-yaml", "mountPath": "/dagster-workspace/"},
            *copy.deepcopy(component.get("volumeMounts") or []),
        ],
        "resources": copy.deepcopy(component.get("resources") or {}),
    }
    return {
        "serviceAccountName": _service_account(values),
        "automountServiceAccountToken": True,
        "securityContext": copy.deepcopy(component.get("podSecurityContext") or {}),
        "initContainers": _init_containers(values, component),
        "containers": [container],
        "volumes": [
            {"name": "dagster-instance", "configMap": {"name": f"{FULLNAME}-instance"}},
            {"name": "dagster-workspace-yaml", "configMap": {"name": f"{FULLNAME}-workspace-yaml"}},
            *copy.deepcopy(component.get("volumes") or []),
        ],
    }


def webserver_pod(values: dict[str, Any]) -> dict[str, Any]:
    component = values.get("dagsterWebserver") or {}
    pod = _dagster_pod(values, component, f"{FULLNAME}-webserver-env", [])
    pod["containers"][0]["ports"] = [{"name": "http", "containerPort": 80, "protocol": "TCP"}]
    return pod


def daemon_pod(values: dict[str, Any]) -> dict[str, Any]:
    component = values.get("dagsterDaemon") or {}
    tolerance = {"name": "DAGSTER_DAEMON_HEARTBEAT_TOLERANCE", "value": "1800"}
    return _dagster_pod(values, component, f"{FULLNAME}-daemon-env", [tolerance])


def chart_pods(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every long-running pod the chart renders from our values, by Deployment name."""
    pods = {f"{FULLNAME}-dagster-webserver": webserver_pod(values), f"{FULLNAME}-daemon": daemon_pod(values)}
    for deployment in user_deployments(values):
        pods[f"{FULLNAME}-dagster-user-deployments-{deployment['name']}"] = code_server_pod(values, deployment)
    return pods
