"""generator.releases.gpu_allocation is KServe's GPU allocation: checked against the real controller.

Each case (head GPUs, worker GPUs, TP, PP) is llmpack's ServingRuntime and InferenceService of a
valid render with the GPU requests and limits and the workerSpec sizes replaced (0 = not set,
on both objects). The controller's head and worker Deployments give the pods (1 head + worker
replicas) and the GPU request and limit of each container; an allocation gpu_allocation
refuses must be reported by the controller (InvalidGPUAllocation) and build no pods.

Run on two releases only, to keep the warm run short: GPU_RELEASES.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from bundles import environments
from install import KServe
from kube import Obj
from reconcile import Deployed
from report import GpuRow, Report, Say
from scenarios import Outcome, Pair, base_pair, clean, create, outcomes

from generator.releases import RELEASES, gpu_allocation

NAMESPACE = "conformance-gpu"
GPU = "nvidia.com/gpu"
# 0.15.2: the first release with this algorithm; 0.19: the newest whose worker Deployment stays (kserve#6113).
GPU_RELEASES = ["0.15", "0.19"]
# (head GPUs, worker GPUs, TP, PP); 0 = not set. Chosen by hand to cover every branch of the
# algorithm (kserve-multinode.md §5), llmpack's own choice (head = worker = TP), and refusals.
CASES = [
    (1, 1, 1, 2), (2, 2, 2, 2), (4, 4, 4, 2), (8, 8, 8, 2), (1, 1, 1, 4), (2, 2, 2, 3), (4, 4, 4, 4), (1, 1, 1, 1),
    (0, 0, 1, 1), (0, 0, 1, 2), (0, 0, 2, 2), (0, 0, 4, 1),
    (0, 1, 1, 2), (0, 2, 2, 2), (0, 3, 2, 2), (0, 4, 4, 2), (0, 8, 4, 2), (0, 2, 3, 1), (0, 3, 8, 1),
    (1, 0, 1, 2), (2, 0, 2, 2), (3, 0, 2, 2), (4, 0, 2, 2), (8, 0, 4, 2), (1, 0, 4, 1),
    (2, 1, 2, 2), (1, 2, 2, 2), (3, 1, 2, 2), (6, 2, 4, 2), (4, 2, 2, 4), (2, 4, 4, 2), (8, 1, 2, 2),
    (1, 3, 4, 2), (2, 3, 4, 2), (5, 1, 2, 3), (16, 8, 8, 2),
]


def label(case: tuple[int, int, int, int]) -> str:
    return "head {} worker {} TP {} PP {}".format(*case)


def gpu_pair(base: Pair, index: int, case: tuple[int, int, int, int]) -> Pair:
    """The base pair renamed gpu-NN, GPUs only where the case sets them, and the case's TP and PP."""
    head, worker, tp, pp = case
    pair = Pair(copy.deepcopy(base.runtime), copy.deepcopy(base.isvc))
    name = f"gpu-{index:02d}"
    pair.isvc["metadata"]["name"], pair.runtime["metadata"]["name"] = name, f"{name}-rt"
    pair.model["runtime"] = f"{name}-rt"
    runtime = pair.runtime["spec"]
    for container in (runtime["containers"][0], runtime["workerSpec"]["containers"][0],
                      pair.model, pair.worker["containers"][0]):
        for kind in ("requests", "limits"):
            container.get("resources", {}).get(kind, {}).pop(GPU, None)
    for resources, count in ((pair.model["resources"], head), (pair.worker["containers"][0]["resources"], worker)):
        if count:
            for kind in ("requests", "limits"):
                resources[kind][GPU] = str(count)
    pair.worker.update(tensorParallelSize=tp, pipelineParallelSize=pp)
    return pair


def gpus(deployment: Obj | None) -> tuple[str, str] | None:
    if deployment is None:
        return None
    resources = deployment["spec"]["template"]["spec"]["containers"][0].get("resources", {})
    return resources.get("requests", {}).get(GPU, "-"), resources.get("limits", {}).get(GPU, "-")


def reading(name: str, outcome: Outcome) -> dict[str, Any]:
    head = outcome.deployments.get(f"{name}-predictor")
    worker = outcome.deployments.get(f"{name}-predictor-worker")
    return {"head replicas": head["spec"].get("replicas") if head else None, "head GPUs": gpus(head),
            "worker replicas": worker["spec"].get("replicas") if worker else None, "worker GPUs": gpus(worker),
            "reports": outcome.failure()}


@pytest.fixture(scope="session")
def allocations(version: str, kserve: KServe, deployed: Deployed, say: Say) -> dict[int, dict[str, Any]]:
    began = time.monotonic()
    release = RELEASES[version]
    env = environments()[0]
    base = base_pair(deployed.kserve[env], "gpu", NAMESPACE)
    pairs = [gpu_pair(base, i, case) for i, case in enumerate(CASES)]
    refused = {p.name: create(kserve.kube, p) for p in pairs}
    assert not any(refused.values()), f"KServe {release.patch} refused a GPU case at admission: {refused}"
    seen = outcomes(kserve.kube, pairs)
    clean(kserve.kube, NAMESPACE)
    say(f"KServe {release.patch}: {len(pairs)} GPU allocation cases in {time.monotonic() - began:.0f} s")
    return {i: reading(p.name, seen[p.name]) for i, p in enumerate(pairs)}


@pytest.mark.parametrize("case", CASES, ids=[label(c).replace(" ", "") for c in CASES])
@pytest.mark.parametrize("version", GPU_RELEASES, scope="session")
def test_gpu_allocation(version: str, case: tuple[int, int, int, int], allocations: dict[int, dict[str, Any]],
                        report: Report) -> None:
    head, worker, tp, pp = case
    actual = allocations[CASES.index(case)]
    try:
        pods, head_gpus, worker_gpus = gpu_allocation(tp * pp, head, worker)
    except ValueError as err:
        expected: dict[str, Any] = {"refused": str(err)}
        shown = "InvalidGPUAllocation"
        agree = actual["head replicas"] is None and "InvalidGPUAllocation" in actual["reports"]
    else:
        expected = {"head replicas": 1, "head GPUs": (str(head_gpus), str(head_gpus)), "worker replicas": pods - 1}
        if pods > 1:   # a worker Deployment of 0 replicas runs no GPU: its count is not compared
            expected["worker GPUs"] = (str(worker_gpus), str(worker_gpus))
        shown = f"pods {pods}, head {head_gpus}, worker {worker_gpus}"
        agree = all(actual[k] == v for k, v in expected.items())
    controller = ", ".join(f"{k} {v}" for k, v in actual.items() if v not in (None, ""))
    report.gpu.append(GpuRow(RELEASES[version].patch, label(case), shown, controller, agree))
    assert agree, f"gpu_allocation{(tp * pp, head, worker)} -> {expected}; the controller: {actual}"
