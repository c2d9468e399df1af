"""One KServe release's manager on loopback, and the files it needs from its module.

`tools/control-plane/build kserve vX.Y.Z` leaves the binary and config/ (CRDs, the
inferenceservice-config ConfigMap, the webhook configurations) in .tools/control-plane.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from controlplane import BUILD, CACHE, LOOPBACK, TOOLS, Cluster, NotBuilt, free_port, wait_http
from kube import Obj


def load_yaml_files(paths: list[Path]) -> list[Obj]:
    """Every document of the files, parsed once and then cached as JSON under .cache/conformance
    (KServe's CRDs are megabytes of YAML: seconds to parse, milliseconds to read as JSON)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    cached = CACHE / f"yaml-{digest.hexdigest()[:32]}.json"
    if cached.is_file():
        docs: list[Obj] = json.loads(cached.read_text())
        return docs
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for path in paths for d in yaml.load_all(path.read_text(), Loader=loader) if d]
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(docs))
    partial.replace(cached)
    return docs


@dataclass(frozen=True)
class KServeFiles:
    """What a KServe release's manager needs, as `tools/control-plane/build kserve vX.Y.Z` left it."""

    patch: str                    # 0.20.0
    manager: Path
    config: Path                  # .tools/control-plane/kserve-vX.Y.Z/config

    @classmethod
    def of(cls, patch: str) -> KServeFiles:
        version = f"v{patch}"
        unavailable = TOOLS / f"kserve-{version}.unavailable"
        if unavailable.is_file():
            raise NotBuilt(f"KServe {patch} cannot be built here: {unavailable.read_text().strip()}")
        files = cls(patch, TOOLS / f"kserve-manager-{version}", TOOLS / f"kserve-{version}" / "config")
        if not files.manager.is_file() or not files.config.is_dir():
            raise NotBuilt(f"{files.manager} is missing: run `{BUILD} kserve {version}` (make conformance does)")
        return files

    def crds(self) -> list[Obj]:
        docs = load_yaml_files(sorted((self.config / "crd" / "full").rglob("*.yaml")))
        # config/crd/full also holds kustomize patches of kind CustomResourceDefinition (conversion
        # webhooks of the LLMInferenceService CRDs, served by another manager): whole CRDs only.
        return [d for d in docs if d and d.get("kind") == "CustomResourceDefinition" and d.get("spec", {}).get("group")]

    def configmap(self) -> Obj:
        obj: Obj = yaml.safe_load((self.config / "configmap" / "inferenceservice.yaml").read_text())
        return obj

    def webhooks(self, port: int, ca_bundle: str) -> list[Obj]:
        """The release's webhook configurations, pointed at the manager on 127.0.0.1:port. The pod
        mutator is kept: dry-run Pod creates go through it, as the ReplicaSet controller's would."""
        out = []
        for doc in yaml.safe_load_all((self.config / "webhook" / "manifests.yaml").read_text()):
            if not doc:
                continue
            doc["metadata"].pop("creationTimestamp", None)
            hooks = []
            for hook in doc["webhooks"]:
                path = hook["clientConfig"]["service"]["path"]
                hook["clientConfig"] = {"url": f"https://{LOOPBACK}:{port}{path}", "caBundle": ca_bundle}
                hooks.append(hook)
            if hooks:
                out.append({**doc, "webhooks": hooks})
        return out


class Manager:
    """One KServe release's manager on loopback (webhook server, metrics and probes)."""

    def __init__(self, cluster: Cluster, files: KServeFiles) -> None:
        self.cluster, self.files = cluster, files
        self.name = f"kserve-manager-{files.patch}"
        self.webhook_port = free_port()
        self.log = cluster.logs / f"{self.name}.log"
        self.tmp = cluster.folder / self.name
        certs = self.tmp / "k8s-webhook-server" / "serving-certs"
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copy(cluster.certs.cert, certs / "tls.crt")
        shutil.copy(cluster.certs.key, certs / "tls.key")

    def start(self) -> None:
        health = free_port()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.tmp), "TMPDIR": str(self.tmp),
               "KUBECONFIG": str(self.cluster.kubeconfig), "POD_NAMESPACE": "kserve"}
        self.cluster.supervisor.start(self.name, [
            str(self.files.manager), f"-metrics-addr={LOOPBACK}:{free_port()}",
            f"-health-probe-addr={LOOPBACK}:{health}", f"-webhook-port={self.webhook_port}",
        ], self.log, env)
        wait_http(f"http://{LOOPBACK}:{health}/readyz", self.name,
                  lambda: self.cluster.supervisor.check_alive(self.name, self.log), timeout=120)

    def stop(self) -> None:
        self.cluster.supervisor.stop(self.name)

    def log_lines(self, needle: str) -> int:
        return sum(needle in line for line in self.log.read_text(errors="replace").splitlines())
