"""Putting things into the cluster and taking them out again: CRDs, a KServe release, bundles.

There is no kube-controller-manager here, so no garbage collector and no namespace
controller: what a release created is deleted explicitly, kind by kind, before the next
release is installed.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bundles import Document
from controlplane import Cluster
from kube import ApiError, Kube, Obj
from manager import KServeFiles, Manager, load_yaml_files

from generator.releases import KServeRelease

SYSTEM_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
ISVC = ("serving.kserve.io/v1beta1", "InferenceService")
# What a KServe release and its bundles leave in a namespace (the controller's objects included).
WORKLOAD_KINDS = (ISVC, ("serving.kserve.io/v1alpha1", "ServingRuntime"), ("apps/v1", "Deployment"),
                  ("v1", "Service"), ("batch/v1", "Job"), ("v1", "PersistentVolumeClaim"),
                  ("networking.k8s.io/v1", "Ingress"), ("v1", "ConfigMap"))
WEBHOOK_KINDS = (("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
                 ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"))
# Objects of the cluster itself that the cleanup keeps.
KEEP = {("v1", "ConfigMap", "kube-root-ca.crt"), ("v1", "Service", "kubernetes")}


@dataclass
class KServe:
    """A running KServe release: its manager, and the API client of the cluster."""

    release: KServeRelease
    manager: Manager
    kube: Kube
    cluster: Cluster


def crds_from(folder: Path) -> list[Obj]:
    return [d for d in load_yaml_files(sorted(folder.rglob("*.yaml"))) if d.get("kind") == "CustomResourceDefinition"]


def install_crds(kube: Kube, crds: Iterable[Obj], timeout: float = 180) -> None:
    names = []
    for crd in crds:
        crd["metadata"].pop("creationTimestamp", None)
        kube.apply(crd)
        names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + timeout
    for name in names:
        while not _established(kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout:.0f} s")
            time.sleep(0.5)
    kube.forget_discovery()


def _established(crd: Obj | None) -> bool:
    conditions = (crd or {}).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def ensure_namespace(kube: Kube, name: str) -> None:
    """The namespace, and the `default` ServiceAccount kube-controller-manager would create in it
    (the ServiceAccount admission plugin refuses pods, even dry-run ones, without it)."""
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}})


def install_kserve(kube: Kube, cluster: Cluster, files: KServeFiles) -> Manager:
    """CRDs, namespace and ConfigMap, then the manager, then its webhooks (pointed at loopback)."""
    install_crds(kube, files.crds())
    ensure_namespace(kube, "kserve")
    configmap = files.configmap()
    configmap["metadata"].pop("creationTimestamp", None)
    kube.apply(configmap)
    manager = Manager(cluster, files)
    manager.start()
    ca_bundle = base64.b64encode(cluster.certs.ca.read_bytes()).decode()
    for webhook in files.webhooks(manager.webhook_port, ca_bundle):
        kube.apply(webhook)
    return manager


def uninstall_kserve(kube: Kube, manager: Manager) -> None:
    """InferenceServices first, while the manager can still run their finalizers; then the webhooks,
    the manager, and every object the release or its bundles left behind."""
    for isvc in kube.list(*ISVC)["items"]:
        kube.delete(*ISVC, isvc["metadata"]["namespace"], isvc["metadata"]["name"])
    for isvc in kube.list(*ISVC)["items"]:
        kube.wait_gone(*ISVC, isvc["metadata"]["namespace"], isvc["metadata"]["name"])
    for api_version, kind in WEBHOOK_KINDS:
        for hook in kube.list(api_version, kind)["items"]:
            kube.delete(api_version, kind, None, hook["metadata"]["name"])
    manager.stop()
    for namespace in namespaces(kube):
        for api_version, kind in WORKLOAD_KINDS:
            for item in kube.list(api_version, kind, namespace)["items"]:
                if (api_version, kind, item["metadata"]["name"]) not in KEEP:
                    remove(kube, api_version, kind, namespace, item)


def remove(kube: Kube, api_version: str, kind: str, namespace: str, item: Obj) -> None:
    name = item["metadata"]["name"]
    if item["metadata"].get("finalizers"):   # the controller that would clear them is gone
        kube.request("PATCH", kube.resource(api_version, kind).url(namespace, name),
                     b'{"metadata":{"finalizers":null}}', "application/merge-patch+json")
    kube.delete(api_version, kind, namespace, name)
    kube.wait_gone(api_version, kind, namespace, name)


def namespaces(kube: Kube) -> list[str]:
    return [n["metadata"]["name"] for n in kube.list("v1", "Namespace")["items"]
            if n["metadata"]["name"] not in SYSTEM_NAMESPACES]


def apply_order(doc: Document) -> tuple[int, str]:
    """Argo CD's order: sync waves (PVC 0, Job 1, runtime and Services 2, serving 3), then the file."""
    wave = doc.obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0")
    return int(wave), doc.source


def apply_documents(kube: Kube, documents: Iterable[Document], dry_run: bool = False) -> dict[str, Obj]:
    """Server-side apply (strict) of every document, in Argo CD's order; returns source -> stored object.
    Raises ApiError naming the document that was refused."""
    stored = {}
    docs = sorted(documents, key=apply_order)
    for namespace in sorted({d.namespace for d in docs if d.namespace}):
        ensure_namespace(kube, namespace)
    for doc in docs:
        try:
            stored[doc.source] = kube.apply(doc.text, dry_run=dry_run)
        except ApiError as err:
            raise ApiError(err.status, {**err.body, "message": f"{doc.source}: {err.message}"},
                           "PATCH", doc.source) from None
    return stored
