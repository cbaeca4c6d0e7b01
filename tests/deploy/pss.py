"""The Kubernetes Pod Security Standards, "restricted" profile, as one function over a pod spec.

Implemented from the control tables of https://kubernetes.io/docs/concepts/security/pod-security-standards/
(Kubernetes 1.32, the version the manifests target): every Baseline control plus the Restricted
ones. ``restricted_violations(pod_spec)`` returns one message per control a pod breaks (empty =
admitted by a namespace labelled ``pod-security.kubernetes.io/enforce: restricted``). "Containers"
means containers, initContainers and ephemeralContainers. Pod specs are in Kubernetes' camelCase.

Baseline:
  HostProcess        securityContext.windowsOptions.hostProcess (pod, containers): unset or false
  Host namespaces    hostNetwork, hostPID, hostIPC: unset or false
  Privileged         containers' securityContext.privileged: unset or false
  Capabilities       (tightened by Restricted below)
  HostPath volumes   none (Restricted allows fewer volume types anyway)
  Host ports         containers' ports[].hostPort: unset or 0
  AppArmor           appArmorProfile.type (pod, containers): unset, RuntimeDefault or Localhost;
                     annotations container.apparmor.security.beta.kubernetes.io/*: runtime/default or localhost/*
  SELinux            seLinuxOptions.type: unset, "", container_t, container_init_t, container_kvm_t,
                     container_engine_t; seLinuxOptions.user and .role: unset or ""
  /proc mount type   containers' securityContext.procMount: unset or Default
  Seccomp            seccompProfile.type (pod, containers): never Unconfined
  Sysctls            securityContext.sysctls[].name: only the "safe" set below
Restricted:
  Volume types       only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim,
                     projected, secret
  Privilege escal.   every container: securityContext.allowPrivilegeEscalation = false
  Non-root           runAsNonRoot = true at pod level, or on every container; never false anywhere
  Non-root user      runAsUser (pod, containers): unset or != 0
  Seccomp            seccompProfile.type RuntimeDefault or Localhost at pod level, or on every
                     container (Unconfined and unset are refused)
  Capabilities       every container drops ALL; adds at most NET_BIND_SERVICE
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
ALLOWED_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}
ALLOWED_APPARMOR = {"RuntimeDefault", "Localhost"}
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod_spec.get(key) or []


def restricted_violations(pod_spec: dict[str, Any], annotations: dict[str, str] | None = None) -> list[str]:
    """Every "restricted" control the pod breaks, as readable messages (empty: admitted)."""
    problems: list[str] = []
    pod_sc: dict[str, Any] = pod_spec.get("securityContext") or {}
    all_containers = list(containers(pod_spec))

    # Baseline: host namespaces.
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(field):
            problems.append(f"pod: {field} must be unset or false")
    # Baseline: sysctls.
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl.get('name')} is not in the safe set")
    # Baseline: AppArmor annotations.
    for key, value in (annotations or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and not (value == "runtime/default" or value.startswith("localhost/")):
            problems.append(f"pod: AppArmor annotation {key}={value}")
    # Restricted: volume types (covers Baseline's hostPath ban).
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            problems.append(f"volume {volume.get('name')}: type {sorted(kinds)} not allowed")

    # Pod- and container-level controls that can be set at either level.
    for owner, sc in [
        ("pod", pod_sc),
        *((f"container {c.get('name')}", c.get("securityContext") or {}) for c in all_containers),
    ]:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"{owner}: windowsOptions.hostProcess must be unset or false")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES:
            problems.append(f"{owner}: seLinuxOptions.type {selinux.get('type')} not allowed")
        if selinux.get("user") or selinux.get("role"):
            problems.append(f"{owner}: seLinuxOptions.user/role must be unset")
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor is not None and apparmor not in ALLOWED_APPARMOR:
            problems.append(f"{owner}: appArmorProfile.type {apparmor} not allowed")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in ALLOWED_SECCOMP:
            problems.append(f"{owner}: seccompProfile.type {seccomp} not allowed")
        if sc.get("runAsNonRoot") is False:
            problems.append(f"{owner}: runAsNonRoot must not be false")
        if sc.get("runAsUser") == 0:
            problems.append(f"{owner}: runAsUser must not be 0")

    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type") in ALLOWED_SECCOMP
    for container in all_containers:
        name = f"container {container.get('name')}"
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount must be Default")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if not (pod_non_root or sc.get("runAsNonRoot") is True):
            problems.append(f"{name}: runAsNonRoot must be true (pod or container)")
        if not (pod_seccomp or (sc.get("seccompProfile") or {}).get("type") in ALLOWED_SECCOMP):
            problems.append(f"{name}: seccompProfile RuntimeDefault or Localhost (pod or container)")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: capabilities must drop ALL")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{name}: capabilities may add only NET_BIND_SERVICE, not {sorted(added)}")
    return problems
