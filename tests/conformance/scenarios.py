"""Variations of a rendered bundle (for admission and GPU allocation), created in their own
namespace, and what the controller made of each.

A variation is llmpack's ServingRuntime and InferenceService of a valid render, renamed into
its own namespace (so the example bundles in the cluster stay untouched) and then edited.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from bundles import Render
from install import ISVC, ensure_namespace
from kube import ApiError, Kube, Obj

SETTLE = 2.0       # seconds after the last InferenceService reported a status
TIMEOUT = 30.0     # seconds for the controller to report on every InferenceService


@dataclass
class Pair:
    runtime: Obj
    isvc: Obj

    @property
    def name(self) -> str:
        return str(self.isvc["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.isvc["metadata"]["namespace"])

    @property
    def model(self) -> Obj:
        model: Obj = self.isvc["spec"]["predictor"]["model"]
        return model

    @property
    def worker(self) -> Obj:
        worker: Obj = self.isvc["spec"]["predictor"]["workerSpec"]
        return worker


def base_pair(render: Render, name: str, namespace: str) -> Pair:
    """The first release's ServingRuntime and InferenceService of a render, renamed and moved."""
    isvc = copy.deepcopy(render.of_kind("InferenceService")[0].obj)
    runtime = copy.deepcopy(render.find("ServingRuntime", isvc["spec"]["predictor"]["model"]["runtime"]).obj)
    isvc["metadata"].update(name=name, namespace=namespace)
    runtime["metadata"].update(name=f"{name}-rt", namespace=namespace)
    isvc["spec"]["predictor"]["model"]["runtime"] = f"{name}-rt"
    return Pair(runtime, isvc)


def create(kube: Kube, pair: Pair) -> ApiError | None:
    """Create the runtime, then the InferenceService (strict); the first refusal, if any."""
    ensure_namespace(kube, pair.namespace)
    for obj in (pair.runtime, pair.isvc):
        try:
            kube.create(obj)
        except ApiError as err:
            return err
    return None


@dataclass
class Outcome:
    """What the controller did with one admitted InferenceService."""

    deployments: dict[str, Obj] = field(default_factory=dict)   # name -> Deployment
    conditions: list[Obj] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def failure(self) -> str:
        """The controller's complaint: conditions that are not True, then warning events."""
        bad = [f"{c['type']}={c['status']}" + (f" ({c['reason']})" if c.get("reason") else "")
               + (f": {c['message']}" if c.get("message") else "")
               for c in self.conditions if c.get("status") != "True"
               and "ingress" not in (c.get("message", "") + c["type"]).lower()]
        return "; ".join([*bad, *self.events])

    def summary(self) -> str:
        made = ", ".join(f"{name} x{d['spec'].get('replicas')}" for name, d in sorted(self.deployments.items()))
        failure = self.failure()
        return (f"created {made}" if made else "created no Deployment") + (f"; reports {failure}" if failure else "")


def outcomes(kube: Kube, pairs: list[Pair]) -> dict[str, Outcome]:
    """Wait until the controller reported on every InferenceService (a PredictorReady condition, or
    a Warning event), then read back its Deployments, conditions and warning events."""
    namespaces = sorted({p.namespace for p in pairs})
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        seen = _seen(kube, namespaces)
        if all(seen[0].get((p.namespace, p.name)) or seen[1].get((p.namespace, p.name)) for p in pairs):
            break
        time.sleep(0.3)
    time.sleep(SETTLE)
    conditions, warnings = _seen(kube, namespaces)
    deployments = {(d["metadata"]["namespace"], d["metadata"]["name"]): d
                   for ns in namespaces for d in kube.list("apps/v1", "Deployment", ns)["items"]}
    return {p.name: Outcome({name: d for (ns, name), d in deployments.items() if ns == p.namespace
                             and name in (f"{p.name}-predictor", f"{p.name}-predictor-worker")},
                            conditions.get((p.namespace, p.name), []), warnings.get((p.namespace, p.name), []))
            for p in pairs}


Named = tuple[str, str]   # namespace, name


def _seen(kube: Kube, namespaces: list[str]) -> tuple[dict[Named, list[Obj]], dict[Named, list[str]]]:
    """(namespace, name) -> the InferenceService's conditions once it has PredictorReady, and -> its
    Warning events."""
    conditions: dict[Named, list[Obj]] = {}
    warnings: dict[Named, list[str]] = {}
    for ns in namespaces:
        for isvc in kube.list(*ISVC, ns)["items"]:
            found = isvc.get("status", {}).get("conditions") or []
            if any(c["type"] == "PredictorReady" for c in found):
                conditions[(ns, isvc["metadata"]["name"])] = found
        for event in kube.list("v1", "Event", ns)["items"]:
            if event.get("type") == "Warning":
                warnings.setdefault((ns, event["involvedObject"].get("name", "")), []).append(
                    f"event {event.get('reason')}: {event.get('message')}")
    return conditions, {key: sorted(set(found)) for key, found in warnings.items()}


def clean(kube: Kube, namespace: str) -> None:
    """Remove every variation of a namespace (the manager is still running its finalizers)."""
    for isvc in kube.list(*ISVC, namespace)["items"]:
        kube.delete(*ISVC, namespace, isvc["metadata"]["name"])
    for isvc in kube.list(*ISVC, namespace)["items"]:
        kube.wait_gone(*ISVC, namespace, isvc["metadata"]["name"])
    for api_version, kind in (("serving.kserve.io/v1alpha1", "ServingRuntime"), ("apps/v1", "Deployment"),
                              ("v1", "Service"), ("v1", "Event")):
        kube.delete_all(api_version, kind, namespace)
    deadline = time.monotonic() + TIMEOUT
    while any(kube.list(a, k, namespace)["items"] for a, k in (("apps/v1", "Deployment"), ("v1", "Service"))):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Deployments or Services of {namespace} still there after {TIMEOUT:.0f} s")
        time.sleep(0.2)
