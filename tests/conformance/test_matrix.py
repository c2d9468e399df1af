"""Every example environment x both targets x every pinned KServe release, through the real
API server and the real controller.

target kserve: the bundle is applied for real (server-side, fieldValidation=Strict), the
controller reconciles it, and the topology it builds (pods, GPUs, injected env, Services)
must be llmpack's plan. target raw: the raw bundle is applied the same way, and every field
of its Deployments and Services must be what the controller built from the kserve bundle of
the same values. Where they differ the controller is right; the differences are listed in the
report (.cache/conformance/report.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from bundles import environments, is_located, versions
from compare import Difference, differences, normalise, without_generation, without_unplanned_annotations
from install import KServe
from kube import ApiError, Kube, Obj
from reconcile import Deployed, counterpart, pod_of
from report import Report

from generator.releases import KNOWN_GPU_RESOURCES

ISVC_LABEL = "serving.kserve.io/inferenceservice"   # on everything the controller makes for an InferenceService
# The variables the controller injects that decide the topology (kserve-multinode.md §4).
TOPOLOGY_ENV = ("RAY_NODE_COUNT", "REQUEST_GPU_COUNT", "TENSOR_PARALLEL_SIZE", "PIPELINE_PARALLEL_SIZE",
                "HEAD_SVC", "WORKER_SVC")


def refused_or_applied(deployed: Deployed, env: str, target: str) -> dict[str, Obj]:
    bundle = (deployed.kserve if target == "kserve" else deployed.raw)[env]
    if bundle.refusal:
        assert is_located(bundle.refusal), f"llmpack refused without saying where: {bundle.refusal}"
        pytest.skip(f"refused by llmpack: {bundle.refusal.splitlines()[-1].strip()}")
    applied = (deployed.applied if target == "kserve" else deployed.raw_applied)[env]
    if isinstance(applied, ApiError):
        pytest.fail(f"strict server-side apply of the {target} bundle was refused: {applied.message}")
    return applied


def planned_pairs(deployed: Deployed, env: str) -> list[tuple[str, Obj, Obj | None]]:
    """(ISVC name, llmpack's planned object as stored, the controller's counterpart) per raw object."""
    stored = deployed.raw_applied[env]
    assert not isinstance(stored, ApiError)
    objects = deployed.controller_objects()
    isvcs = {d.release: d.name for d in deployed.kserve[env].of_kind("InferenceService")}
    pairs = []
    for doc in deployed.raw[env].documents:
        if doc.kind in ("Deployment", "Service"):
            isvc = isvcs[doc.release]
            pairs.append((isvc, stored[doc.source], counterpart((doc.kind, doc.namespace or "", doc.name), objects)))
    return pairs


def unplanned(deployed: Deployed, env: str) -> list[tuple[str, str]]:
    """(kind, name) of the controller's Deployments and Services for this environment's
    InferenceServices that no object of llmpack's plan corresponds to."""
    isvcs = {(d.namespace, d.name) for d in deployed.kserve[env].of_kind("InferenceService")}
    matched = {id(actual) for _, _, actual in planned_pairs(deployed, env) if actual is not None}
    return [(kind, name) for (kind, namespace, name), obj in sorted(deployed.controller_objects().items())
            if (namespace, obj["metadata"].get("labels", {}).get(ISVC_LABEL)) in isvcs and id(obj) not in matched]


def topology(obj: Obj, isvc: str) -> dict[str, Any]:
    """What decides pods and GPUs: replicas, GPU request and limit by resource name, injected env;
    for Services their type, headlessness, ports and selector."""
    if obj["kind"] == "Service":
        spec = normalise(obj, isvc)["spec"]
        return {"type": spec.get("type"), "headless": spec.get("clusterIP") == "None",
                "ports": [(p.get("port"), p.get("targetPort")) for p in spec.get("ports", [])],
                "publishNotReadyAddresses": spec.get("publishNotReadyAddresses"), "selector": spec.get("selector")}
    containers = {}
    for c in obj["spec"]["template"]["spec"]["containers"]:
        resources = c.get("resources", {})
        gpus = {kind: {k: v for k, v in resources.get(kind, {}).items() if k in KNOWN_GPU_RESOURCES or "gpu" in k}
                for kind in ("requests", "limits")}
        env = {e["name"]: without_generation(e.get("value", ""), isvc) for e in c.get("env", [])
               if e["name"] in TOPOLOGY_ENV}
        containers[c["name"]] = {"gpus": gpus, "env": env}
    return {"replicas": obj["spec"].get("replicas"), "containers": containers}


@pytest.mark.parametrize("env", environments())
@pytest.mark.parametrize("version", versions(), scope="session")
def test_kserve_bundle(version: str, env: str, deployed: Deployed) -> None:
    refused_or_applied(deployed, env, "kserve")
    if deployed.raw[env].refusal:
        pytest.fail(f"llmpack renders target kserve but refuses target raw: {deployed.raw[env].refusal}")
    problems = []
    for isvc, planned, actual in planned_pairs(deployed, env):
        what = f"{planned['kind']} {planned['metadata']['name']}"
        if actual is None:
            problems.append(f"{what}: planned by llmpack, never created by the controller")
            continue
        mine, theirs = topology(planned, isvc), topology(actual, isvc)
        problems += [f"{what}: {field}: llmpack {a!r}, controller {b!r}" for field, a, b in differences(mine, theirs)]
    problems += [f"{kind} {name}: created by the controller, not planned by llmpack"
                 for kind, name in unplanned(deployed, env)]
    assert not problems, "the controller built another topology than llmpack plans:\n" + "\n".join(problems)


def compared(kube: Kube, isvc: str, planned: Obj, actual: Obj) -> list[tuple[str, str, object, object]]:
    """(object, field, llmpack, controller) for a planned object and the controller's; a Deployment's
    pod template is compared as the Pod each would give."""
    name = f"{planned['kind']}/{planned['metadata']['name']}"
    pairs = [(name, planned, actual)]
    if planned["kind"] == "Deployment":
        pairs.append((f"Pod of {name}", pod_of(kube, planned), pod_of(kube, actual)))
    return [(what, field, a, b) for what, mine, theirs in pairs
            for field, a, b in differences(normalise(mine, isvc),
                                           normalise(without_unplanned_annotations(mine, theirs), isvc))]


@pytest.mark.parametrize("env", environments())
@pytest.mark.parametrize("version", versions(), scope="session")
def test_raw_bundle(version: str, env: str, deployed: Deployed, kserve: KServe, report: Report) -> None:
    refused_or_applied(deployed, env, "raw")
    if deployed.kserve[env].refusal:
        pytest.skip("the kserve bundle of the same values is refused: nothing to compare with")
    found = []
    for isvc, planned, actual in planned_pairs(deployed, env):
        if actual is None:
            name = f"{planned['kind']}/{planned['metadata']['name']}"
            found.append(Difference(deployed.release.patch, env, "raw", name, "(object)", "planned", "(absent)", isvc))
            continue
        found += [Difference(deployed.release.patch, env, "raw", what, field, a, b, isvc)
                  for what, field, a, b in compared(kserve.kube, isvc, planned, actual)]
    isvcs = [d.name for d in deployed.kserve[env].of_kind("InferenceService")]
    found += [Difference(deployed.release.patch, env, "raw", f"{kind}/{name}", "(object)", "(absent)", "created",
                         next((i for i in isvcs if name.startswith(i)), "")) for kind, name in unplanned(deployed, env)]
    report.differences += found
    assert not found, f"{len(found)} differences between llmpack's raw bundle and the controller:\n" + "\n".join(
        f"  {d.obj} {d.field}: llmpack {d.llmpack!r}, controller {d.controller!r}" for d in found)
