"""Check stage, pod part: every pod of the bundle meets Pod Security "baseline" and llmpack's
own promises (no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, no
service account token, non-root, CPU and memory requests and limits, pinned images).

The pods are those of Jobs and Deployments, and for KServe the pods the controller will
build: the InferenceService's pod fields with the ServingRuntime's containers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator import layout
from generator.errors import Finding

# Pod Security Standards, baseline: the capabilities a container may add.
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SAFE_SYSCTLS = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                          "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
                          "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
                          "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                          "net.ipv4.tcp_keepalive_probes"})

Pod = tuple[str, dict[str, Any], list[dict[str, Any]]]   # JSON path, pod fields, containers


def pods(obj: dict[str, Any], runtimes: dict[str, dict[str, Any]]) -> Iterator[Pod]:
    """The pods an object stands for (layout.KINDS says where); `runtimes` maps ServingRuntime names to
    objects. A runtime's containers are checked as part of the InferenceService that runs them."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind in ("ServingRuntime", "ClusterServingRuntime"):
        return
    if kind != "InferenceService":
        for path, pod in layout.pod_specs(obj):
            yield path, pod, pod.get("containers") or []
    else:
        predictor = spec.get("predictor") or {}
        runtime = (runtimes.get((predictor.get("model") or {}).get("runtime", "")) or {}).get("spec") or {}
        yield "/spec/predictor", predictor, runtime.get("containers") or []
        worker = predictor.get("workerSpec") or {}
        yield "/spec/predictor/workerSpec", worker, (runtime.get("workerSpec") or {}).get("containers") or []


def findings(where: str, obj: dict[str, Any], runtimes: dict[str, dict[str, Any]]) -> list[Finding]:
    found = []
    for path, pod, containers in pods(obj, runtimes):
        found += [Finding(where, f"{path}{sub}", message) for sub, message in _pod(pod, containers)]
    return found


def _pod(pod: dict[str, Any], containers: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    yield from _host_access(pod)
    yield from _pod_security_context(pod.get("securityContext") or {})
    if pod.get("automountServiceAccountToken") is not False:
        yield "/automountServiceAccountToken", "must be false: the pods need no Kubernetes API token"
    for index, container in enumerate(containers):
        for sub, message in [*_container_security(container.get("securityContext") or {}), *_container(container)]:
            yield f"/containers/{index}{sub}", f"{container.get('name')}: {message}"


def _host_access(pod: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield f"/{field}", "host namespaces are not allowed (Pod Security baseline)"
    for index, volume in enumerate(pod.get("volumes") or []):
        if "hostPath" in volume:
            yield f"/volumes/{index}", "hostPath volumes are not allowed (Pod Security baseline)"


def _pod_security_context(security: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        yield "/securityContext/seccompProfile", "the pod must use the RuntimeDefault seccomp profile"
    if security.get("runAsNonRoot") is not True:
        yield "/securityContext/runAsNonRoot", "the pod must run as non-root"
    for sysctl in security.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield "/securityContext/sysctls", f"sysctl {sysctl.get('name')} is not allowed (Pod Security baseline)"


def _container_security(security: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if security.get("privileged"):
        yield "/securityContext/privileged", "privileged containers are not allowed (Pod Security baseline)"
    if security.get("allowPrivilegeEscalation") is not False:
        yield "/securityContext/allowPrivilegeEscalation", "must be false"
    capabilities = security.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        yield "/securityContext/capabilities/drop", "must drop ALL capabilities"
    added = set(capabilities.get("add") or []) - BASELINE_CAPABILITIES
    if added:
        yield "/securityContext/capabilities/add", f"capabilities {sorted(added)} are not allowed (baseline)"
    if security.get("procMount", "Default") != "Default":
        yield "/securityContext/procMount", "procMount must be Default (Pod Security baseline)"
    if (security.get("seccompProfile") or {}).get("type") == "Unconfined":
        yield "/securityContext/seccompProfile", "Unconfined seccomp is not allowed (Pod Security baseline)"


def _container(container: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for index, port in enumerate(container.get("ports") or []):
        if port.get("hostPort"):
            yield f"/ports/{index}/hostPort", "host ports are not allowed (Pod Security baseline)"
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for name in ("cpu", "memory"):
            if name not in (resources.get(kind) or {}):
                yield f"/resources/{kind}", f"{kind}.{name} must be set"
    image = str(container.get("image", ""))
    last = image.rsplit("/", 1)[-1]
    if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
        yield "/image", f"image {image!r} must be pinned by tag (not latest) or digest"
