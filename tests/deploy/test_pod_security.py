"""Every pod of the deployment passes the Pod Security Standard "restricted" and has resources.

The pods: the API Deployment of ``kubectl kustomize deploy/k8s``; the webserver, daemon and
user-code (gRPC) Deployments the Dagster chart renders from deploy/helm/dagster-values.yaml
(tests/deploy/chart.py); the run pod dagster-k8s builds for a report run, from the Helm values and
from deploy/dagster.k8s.yaml (tests/deploy/run_pod.py). The check itself is tests/deploy/pss.py,
and the last test proves it refuses each kind of violation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy import chart
from tests.deploy.conftest import quantity, render_k8s
from tests.deploy.pss import containers, restricted_violations
from tests.deploy.test_k8s_manifests import KUBERNETES_VERSION
from tests.deploy.test_run_pods import build_run_job

POD_NAMES = [
    "lxp-reports-api",
    "dagster-dagster-webserver",
    "dagster-daemon",
    "dagster-dagster-user-deployments-lxp-reports",
    "run (helm)",
    "run (instance-file)",
]
CHART_PODS = POD_NAMES[1:4]


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for obj in render_k8s():
        if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}:
            found[obj["metadata"]["name"]] = obj["spec"]["template"]["spec"]
    values = chart.load_values()
    found.update(chart.chart_pods(values))
    for source in ("helm", "instance-file"):
        job = build_run_job(source, values, Path(tmp_path_factory.mktemp(source)))
        found[f"run ({source})"] = job["spec"]["template"]["spec"]
    assert sorted(found) == sorted(POD_NAMES), "a pod was added: list it in POD_NAMES"
    return found


@pytest.mark.parametrize("name", POD_NAMES)
def test_pod_is_admitted_by_the_restricted_standard(name: str, pods: dict[str, dict[str, Any]]) -> None:
    assert restricted_violations(pods[name]) == []


@pytest.mark.parametrize("name", POD_NAMES)
def test_every_container_has_cpu_and_memory_requests_and_limits(name: str, pods: dict[str, dict[str, Any]]) -> None:
    for container in containers(pods[name]):
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind) or {}), (container["name"], resources)
        for resource in ("cpu", "memory"):
            assert quantity(resources["requests"][resource]) <= quantity(resources["limits"][resource])


@pytest.mark.parametrize("name", POD_NAMES)
def test_root_filesystem_is_read_only_with_tmp_writable(name: str, pods: dict[str, dict[str, Any]]) -> None:
    pod = pods[name]
    volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]
        mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts") or []}
        assert "emptyDir" in volumes[mounts["/tmp"]], container["name"]


@pytest.mark.parametrize("name", CHART_PODS)
def test_simulated_chart_pods_pass_the_kubernetes_schema(name: str, pods: dict[str, dict[str, Any]]) -> None:
    """Our values put Kubernetes objects into the chart (security contexts, volumes): a misspelt
    field would be dropped or refused at install; as a Pod they must pass the strict schema."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pods[name]}
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def _sc(pod: dict[str, Any], index: int = 0) -> dict[str, Any]:
    sc: dict[str, Any] = pod["containers"][index].setdefault("securityContext", {})
    return sc


VIOLATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "hostNetwork": lambda p: p.update(hostNetwork=True),
    "hostPID": lambda p: p.update(hostPID=True),
    "hostIPC": lambda p: p.update(hostIPC=True),
    "privileged": lambda p: _sc(p).update(privileged=True),
    "hostPath volume": lambda p: p.setdefault("volumes", []).append({"name": "h", "hostPath": {"path": "/"}}),
    "nfs volume": lambda p: p.setdefault("volumes", []).append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
    "hostPort": lambda p: p["containers"][0].setdefault("ports", []).append({"containerPort": 80, "hostPort": 80}),
    "allowPrivilegeEscalation unset": lambda p: _sc(p).pop("allowPrivilegeEscalation"),
    "allowPrivilegeEscalation true": lambda p: _sc(p).update(allowPrivilegeEscalation=True),
    "runAsNonRoot unset": lambda p: (p["securityContext"].pop("runAsNonRoot"), _sc(p).pop("runAsNonRoot", None)),
    "runAsNonRoot false in a container": lambda p: _sc(p).update(runAsNonRoot=False),
    "runAsUser 0": lambda p: p["securityContext"].update(runAsUser=0),
    "seccomp unset": lambda p: p["securityContext"].pop("seccompProfile"),
    "seccomp Unconfined": lambda p: _sc(p).update(seccompProfile={"type": "Unconfined"}),
    "capabilities not dropped": lambda p: _sc(p).update(capabilities={}),
    "capability added": lambda p: _sc(p).update(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
    "procMount Unmasked": lambda p: _sc(p).update(procMount="Unmasked"),
    "unsafe sysctl": lambda p: p["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "SELinux type": lambda p: _sc(p).update(seLinuxOptions={"type": "spc_t"}),
    "AppArmor Unconfined": lambda p: _sc(p).update(appArmorProfile={"type": "Unconfined"}),
    "hostProcess": lambda p: _sc(p).update(windowsOptions={"hostProcess": True}),
    "init container escalates": lambda p: p.setdefault("initContainers", []).append(
        {"name": "i", "image": "x", "securityContext": {"capabilities": {"drop": ["ALL"]}}}
    ),
}


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
def test_the_check_refuses_each_violation(violation: str, pods: dict[str, dict[str, Any]]) -> None:
    pod = copy.deepcopy(pods["lxp-reports-api"])
    assert restricted_violations(pod) == []
    VIOLATIONS[violation](pod)
    assert restricted_violations(pod), f"{violation} was admitted"


def test_net_bind_service_is_the_one_capability_allowed(pods: dict[str, dict[str, Any]]) -> None:
    pod = copy.deepcopy(pods["lxp-reports-api"])
    _sc(pod).update(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
    assert restricted_violations(pod) == []
