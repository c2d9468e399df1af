"""Plan stage, resources part: the requests and limits of every container, GPUs included.

KServe allocates GPUs from the GPU requests of the head and worker containers (reference §5);
setting both to the tensor parallel size gives exactly PP pods of TP GPUs, the seed's meaning.
Quantities are written the way the API server returns them, so GitOps never sees a diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator import quantity
from generator.load import Path_
from generator.plan.values import Issue, Values
from generator.releases import KNOWN_GPU_RESOURCES

Container = dict[str, dict[str, str]]       # {"requests": {...}, "limits": {...}}, canonical
PROBE_PERIOD_SECONDS = 30


@dataclass(frozen=True)
class Pods:
    """What the head and worker pods are made of (KServe builds them from the runtime; target raw
    renders them itself)."""

    gpu_resource: str
    head: Container
    worker: Container
    shm: str
    env: tuple[dict[str, Any], ...]           # the user's env, TP/PP removed
    startup_failure_threshold: int
    worker_startup_failure_threshold: int
    ray_wait_seconds: int
    socket_ifname: str | None
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, Any], ...]
    download: Container                       # the download Job's container
    probe_period: int = PROBE_PERIOD_SECONDS


def gpu_resource(values: Values) -> tuple[str, tuple[str, ...], list[Issue]]:
    """The GPU resource name and the custom names KServe must be told about (an annotation)."""
    name, custom = values.gpu.resource_name, values.gpu.custom_resource_types
    issues: list[Issue] = []
    if name not in KNOWN_GPU_RESOURCES and name not in custom:
        issues.append((("gpu", "resourceName"), f"unknown GPU resource {name!r}: KServe knows "
                       f"{', '.join(KNOWN_GPU_RESOURCES)}; list others in gpu.customResourceTypes"))
    return name, tuple(c for c in custom if c not in KNOWN_GPU_RESOURCES), issues


def container(values: Values, path: Path_, given: dict[str, Any], gpus: int) -> tuple[Container, list[Issue]]:
    """Canonical requests/limits of one container, with `gpus` of the GPU resource in both."""
    issues: list[Issue] = []
    missing = [f"{kind}.{name}" for kind in ("requests", "limits") for name in ("cpu", "memory")
               if name not in (given.get(kind) or {})]
    if missing:
        issues.append((path, f"set {', '.join(missing)}: every container runs with CPU and memory requests and "
                       "limits"))
    gpu, known_gpus = values.gpu.resource_name, (*KNOWN_GPU_RESOURCES, *values.gpu.custom_resource_types)
    result: Container = {}
    for kind in ("requests", "limits"):
        result[kind] = {}
        for resource, amount in sorted((given.get(kind) or {}).items()):
            here = (*path, kind, resource)
            try:
                canonical = quantity.canonical(amount)
            except ValueError as err:
                issues.append((here, str(err)))
                continue
            if resource in known_gpus:
                if resource != gpu or quantity.value(amount) != gpus:
                    issues.append((here, f"GPUs are set by llmpack: {gpu} = tensor parallel size ({gpus}) on head "
                                   "and workers; remove this entry"))
                continue
            result[kind][resource] = canonical
        if gpus:
            result[kind][gpu] = str(gpus)
    return result, issues + _requests_within_limits(path, result)


def _requests_within_limits(path: Path_, result: Container) -> list[Issue]:
    issues: list[Issue] = []
    for resource, limit in result["limits"].items():
        request = result["requests"].get(resource)
        if request is not None and quantity.value(request) > quantity.value(limit):
            issues.append(((*path, "requests", resource), f"request {request} is above the limit {limit}"))
    return issues


def shm(values: Values, *pods: Container) -> tuple[str, list[Issue]]:
    """The /dev/shm size (memory-backed: it must fit in every pod's memory limit)."""
    try:
        size = quantity.canonical(values.shm_size)
    except ValueError as err:
        return "0", [(("shm", "sizeLimit"), str(err))]
    for resources in pods:
        limit = resources["limits"].get("memory")
        if limit is not None and quantity.value(size) > quantity.value(limit):
            return size, [(("shm", "sizeLimit"), f"/dev/shm of {size} is memory-backed and must fit in the "  # noqa: S108
                           f"pod's memory limit of {limit}")]
    return size, []
