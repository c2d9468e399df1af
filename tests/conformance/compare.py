"""Field-by-field comparison of llmpack's plan (its target raw render) with the controller's objects.

Both sides went through the same API server (the raw bundle by a dry-run server-side apply),
so the defaults it fills in are on both sides and need no normalising. What is normalised is
listed in NORMALISED, each with its reason; every other difference is a finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

NORMALISED = {
    "metadata.uid, resourceVersion, generation, creationTimestamp, managedFields":
        "bookkeeping the API server writes for every object",
    "metadata.ownerReferences": "the controller owns what it creates; a raw bundle has no owner",
    "status": "written by controllers that do not run here (no kube-controller-manager, no kubelet)",
    "label isvc.generation (metadata, selectors, pod templates)":
        "the controller stamps the InferenceService's generation; raw has none (README: no generation suffix)",
    "headless Service names NAME-head-G / NAME-workers-G, and HEAD_SVC / WORKER_SVC values":
        "same reason: the generation suffix G; compared without it",
    "Service spec.clusterIP / clusterIPs (unless None)": "allocated by the API server, different for every object",
    "fields set to null": "null means unset in the Kubernetes API (Go zero values serialise as null)",
    "Deployment spec.template": "compared as the Pod the ReplicaSet controller would create from it, admitted by "
        "the API server (dry run: Pod defaults, admission plugins, KServe's pod mutator, which is where KServe "
        "mounts the model volume); the Pod's own name is not compared",
    "annotations on Deployments and Services that llmpack does not set":
        "the controller copies the InferenceService's and the runtime's annotations onto what it creates",
    "annotations argocd.argoproj.io/* and ignore-check.kube-linter.io/*":
        "read by Argo CD and kube-linter from the bundle in git: llmpack orders the raw objects in its own sync "
        "waves and records its linter exceptions on them; the controller's objects are never in git (it copies the "
        "InferenceService's wave onto them)",
    "Pod annotations internal.serving.kserve.io/*":
        "the controller's notes to its pod mutator (e.g. the storage URI); what the mutator injects is compared",
    "order of env, containers, volumes, volumeMounts, ports":
        "compared as maps by name (mountPath for mounts): the order carries no meaning here",
}

BOOKKEEPING = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "ownerReferences",
               "selfLink")
GENERATION_LABEL = "isvc.generation"
TOOL_ANNOTATIONS = ("argocd.argoproj.io/", "ignore-check.kube-linter.io/")
KEYED_LISTS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
               "volumeMounts": "mountPath", "ports": "name", "imagePullSecrets": "name"}


@dataclass(frozen=True)
class Difference:
    release: str       # KServe release (patch)
    env: str
    target: str        # the llmpack bundle the planned value comes from
    obj: str           # Kind/name (llmpack's name)
    field: str
    llmpack: object
    controller: object
    isvc: str = ""     # the InferenceService name, for grouping the same difference across releases

    def general(self) -> tuple[str, str, str, str]:
        """(object, field, llmpack, controller) with the InferenceService name written NAME."""
        def name(value: object) -> str:
            return str(value).replace(self.isvc, "NAME") if self.isvc else str(value)
        return name(self.obj), name(self.field), name(self.llmpack), name(self.controller)


def without_generation(name: str, isvc: str) -> str:
    """NAME-head-3 -> NAME-head (the controller's generation-suffixed headless Service names)."""
    return re.sub(rf"^({re.escape(isvc)}-(?:head|workers))-\d+$", r"\1", name)


def normalise(obj: Obj, isvc: str) -> Obj:
    out: Obj = _drop_nulls(obj)
    meta = out["metadata"]
    for key in BOOKKEEPING:
        meta.pop(key, None)
    meta["name"] = without_generation(meta["name"], isvc)
    out.pop("status", None)
    if out["kind"] == "Deployment":
        out["spec"].pop("template", None)
    _drop_annotations(meta, TOOL_ANNOTATIONS + (("internal.serving.kserve.io/",) if out["kind"] == "Pod" else ()))
    if out["kind"] == "Pod":
        meta.pop("name", None)
    _strip_generation(out)
    if out["kind"] == "Service":
        spec = out["spec"]
        if spec.get("clusterIP") != "None":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
    for container in _containers(out):
        for env in container.get("env", []):
            if "value" in env:
                env["value"] = without_generation(env["value"], isvc)
    return out


def _drop_annotations(meta: Obj, prefixes: tuple[str, ...]) -> None:
    kept = {k: v for k, v in meta.pop("annotations", {}).items() if not k.startswith(prefixes)}
    if kept:
        meta["annotations"] = kept


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _strip_generation(obj: Obj) -> None:
    def strip(labels: Obj | None) -> None:
        if labels is not None:
            labels.pop(GENERATION_LABEL, None)

    strip(obj["metadata"].get("labels"))
    spec = obj.get("spec", {})
    if obj["kind"] == "Deployment":
        strip(spec.get("selector", {}).get("matchLabels"))
    if obj["kind"] == "Service":
        strip(spec.get("selector"))


def _containers(obj: Obj) -> list[Obj]:
    spec = obj.get("spec", {})
    pod = spec if obj["kind"] == "Pod" else spec.get("template", {}).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def without_unplanned_annotations(planned: Obj, actual: Obj) -> Obj:
    """The controller's Deployment or Service with only the annotations llmpack plans."""
    if actual["kind"] == "Pod":
        return actual
    wanted = planned["metadata"].get("annotations", {})
    annotations = {k: v for k, v in actual["metadata"].get("annotations", {}).items() if k in wanted}
    meta = {k: v for k, v in actual["metadata"].items() if k != "annotations"}
    return {**actual, "metadata": {**meta, **({"annotations": annotations} if annotations else {})}}


def differences(planned: Any, actual: Any, path: str = "") -> list[tuple[str, object, object]]:
    """(field, planned value, actual value) for every leaf that differs; lists of named items by name,
    written containers[kserve-container].env[RAY_NODE_COUNT].value."""
    leaf = path.rsplit(".", 1)[-1]
    if isinstance(planned, list) and isinstance(actual, list) and leaf in KEYED_LISTS:
        key = KEYED_LISTS[leaf]
        if all(isinstance(i, dict) and key in i for i in [*planned, *actual]):
            return _dict_differences({i[key]: i for i in planned}, {i[key]: i for i in actual}, path, "[{}]")
    if isinstance(planned, dict) and isinstance(actual, dict):
        return _dict_differences(planned, actual, path, ".{}" if path else "{}")
    return [] if planned == actual else [(path, planned, actual)]


def _dict_differences(planned: Obj, actual: Obj, path: str, child: str) -> list[tuple[str, object, object]]:
    out: list[tuple[str, object, object]] = []
    for key in sorted(set(planned) | set(actual)):
        sub = path + child.format(key)
        if key not in actual:
            out.append((sub, planned[key], "(absent)"))
        elif key not in planned:
            out.append((sub, "(absent)", actual[key]))
        else:
            out += differences(planned[key], actual[key], sub)
    return out
