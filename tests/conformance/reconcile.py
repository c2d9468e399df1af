"""The example bundles of one release, applied to the real cluster and reconciled by its manager.

Per release: every environment's raw bundle is applied for real (strict server-side apply)
and what the API server stored is kept (its defaults filled in); its Deployments and Services
are then deleted, as the controller creates the same names. Every kserve bundle is applied
the same way, and two watches (Deployments, Services) record everything the controller does
until it made every object llmpack plans, and for OBSERVE seconds more.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from bundles import Render, Renders, environments
from install import apply_documents
from kube import ApiError, Event, Kube, Obj, Watcher

from generator.releases import KServeRelease

RECONCILE_TIMEOUT = 90.0   # seconds for the controller to create every planned object
OBSERVE = 10.0             # seconds of watching after that (kserve#6113 deletes within milliseconds)

Key = tuple[str, str, str]   # kind, namespace, name


@dataclass
class Deployed:
    """The example bundles of one release after the controller reconciled them."""

    release: KServeRelease
    kserve: dict[str, Render]                  # env -> kserve render
    raw: dict[str, Render]                     # env -> raw render
    applied: dict[str, dict[str, Obj] | ApiError] = field(default_factory=dict)   # env -> stored objects
    raw_applied: dict[str, dict[str, Obj] | ApiError] = field(default_factory=dict)
    missing: set[tuple[str, str, str]] = field(default_factory=set)   # planned (kind, namespace, name) never seen
    deployment_events: list[Event] = field(default_factory=list)
    service_events: list[Event] = field(default_factory=list)
    observed_seconds: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)   # how long each step took

    def controller_objects(self) -> dict[Key, Obj]:
        """(kind, namespace, name) -> the last version the watches saw (deleted ones included)."""
        return latest([*self.deployment_events, *self.service_events])


def planned_names(raw: Render) -> set[Key]:
    """The Deployments and Services of llmpack's plan (its raw render)."""
    return {(d.kind, d.namespace or "", d.name) for d in raw.documents if d.kind in ("Deployment", "Service")}


def counterpart(planned: Key, objects: dict[Key, Obj]) -> Obj | None:
    """The controller's object for a planned one: the same name, or NAME-G for headless Services."""
    kind, namespace, name = planned
    for (k, ns, actual), obj in sorted(objects.items()):
        if (k, ns) == (kind, namespace) and (actual == name or re.fullmatch(rf"{re.escape(name)}-\d+", actual)):
            return obj
    return None


def seen(planned: set[Key], objects: dict[Key, Obj]) -> set[Key]:
    return {key for key in planned if counterpart(key, objects) is not None}


def apply_raw(kube: Kube, raw: dict[str, Render]) -> dict[str, dict[str, Obj] | ApiError]:
    """Apply every raw bundle for real (strict), keep what the API server stored (defaults filled
    in), then delete its Deployments and Services: the controller creates the same names."""
    stored: dict[str, dict[str, Obj] | ApiError] = {}
    for env, bundle in raw.items():
        if bundle.refusal:
            continue
        try:
            stored[env] = apply_documents(kube, bundle.documents)
        except ApiError as err:
            stored[env] = err
    for bundle in raw.values():
        for doc in bundle.documents:
            if doc.kind in ("Deployment", "Service"):
                api = doc.obj["apiVersion"]
                kube.delete(api, doc.kind, doc.namespace, doc.name)
                kube.wait_gone(api, doc.kind, doc.namespace, doc.name)
    return stored


def wait_reconciled(planned: set[Key], deployments: Watcher, services: Watcher) -> None:
    deadline = time.monotonic() + RECONCILE_TIMEOUT
    while time.monotonic() < deadline:
        objects = latest([*deployments.events, *services.events])
        if seen(planned, objects) == planned:
            return
        time.sleep(0.2)


def latest(events: list[Event]) -> dict[Key, Obj]:
    """(kind, namespace, name) -> the last version seen (deleted objects included)."""
    return {(e.obj["kind"], e.obj["metadata"]["namespace"], e.obj["metadata"]["name"]): e.obj for e in events}


def deploy(kube: Kube, release: KServeRelease, renders: Renders) -> Deployed:
    """Per release: apply every environment's raw bundle (then remove its workloads), apply every
    kserve bundle for real (strict server-side apply), wait until the controller made every
    object llmpack plans, then keep watching Deployments and Services for OBSERVE seconds."""
    version = release.version
    result = Deployed(release, {e: renders.get(e, "kserve", version) for e in environments()},
                      {e: renders.get(e, "raw", version) for e in environments()})
    began = time.monotonic()
    result.raw_applied = apply_raw(kube, result.raw)
    result.seconds["render and apply raw"] = time.monotonic() - began
    deployments = Watcher(kube, "apps/v1", "Deployment")
    services = Watcher(kube, "v1", "Service")
    planned: set[Key] = set()
    for env, bundle in result.kserve.items():
        if bundle.refusal:
            continue
        try:
            result.applied[env] = apply_documents(kube, bundle.documents)
        except ApiError as err:
            result.applied[env] = err
            continue
        if not result.raw[env].refusal:
            planned |= planned_names(result.raw[env])
    result.seconds["render and apply kserve"] = time.monotonic() - began - sum(result.seconds.values())
    wait_reconciled(planned, deployments, services)
    result.seconds["reconcile"] = time.monotonic() - began - sum(result.seconds.values())
    began = time.monotonic()
    time.sleep(OBSERVE)
    result.observed_seconds = time.monotonic() - began
    result.deployment_events, result.service_events = deployments.stop(), services.stop()
    result.missing = planned - seen(planned, result.controller_objects())
    return result




def pod_of(kube: Kube, deployment: Obj) -> Obj:
    """The Pod the ReplicaSet controller would create from a Deployment, as the API server admits it:
    a dry-run create (Pod defaults, admission plugins, KServe's pod mutator); no kubelet needed."""
    template = deployment["spec"]["template"]
    meta, owner = template.get("metadata", {}), deployment["metadata"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{owner['name']}-pod", "namespace": owner["namespace"],
                        "labels": meta.get("labels", {}), "annotations": meta.get("annotations", {})},
           "spec": template["spec"]}
    return kube.create(pod, dry_run=True)
