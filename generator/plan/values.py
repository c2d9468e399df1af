"""The merged values of one release as typed data, read once after the schema check.

The schema (schemas/values.schema.json) has already guaranteed every type and required key, so
this only names things: optional keys become None or empty, and nothing after this reads
`dict[str, Any]` by string keys. Mappings that go into manifests as they are (resources,
node selector, tolerations, env items) stay plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.load import Path_

Resources = dict[str, dict[str, Any]]       # {"requests": {...}, "limits": {...}} as written
Issue = tuple[Path_, str]                   # a problem with the values: where, and what to do


@dataclass(frozen=True)
class EnvVar:
    """One item of model.env, with its position for located problems."""

    index: int                     # position in model.env, for located problems
    name: str
    item: dict[str, Any]           # the item as written: name and value or valueFrom

    @property
    def value(self) -> str | None:
        value = self.item.get("value")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Model:
    """model.*: which model is served, from where, and how its server is started."""

    id: str
    revision: str
    format: str
    storage_uri: str
    architecture: str | dict[str, Any] | None
    env: tuple[EnvVar, ...]
    args: tuple[str, ...]
    resources: Resources


@dataclass(frozen=True)
class Gpu:
    """gpu.*: the GPU resource the pods request, and what the capacity estimate reads."""

    resource_name: str
    custom_resource_types: tuple[str, ...]
    raw: dict[str, Any]            # type, memory, perNode, node: read by the capacity estimate


@dataclass(frozen=True)
class Pvc:
    """pvc.*: the claim that holds the model's files (created by the bundle, or named)."""

    create: bool
    name: str | None
    size: str | int | None
    storage_class: str | None
    access_modes: tuple[str, ...]


@dataclass(frozen=True)
class TokenSecret:
    """The Secret (name and key) that holds the Hugging Face token of the download."""

    name: str
    key: str


@dataclass(frozen=True)
class Download:
    """download.*: the Job that fetches the model onto the claim."""

    enabled: bool
    image: str | None
    token_secret: TokenSecret | None
    ignore_patterns: tuple[str, ...]
    active_deadline_seconds: int
    backoff_limit: int
    resources: Resources


@dataclass(frozen=True)
class Verify:
    """verify.*: the smoke test Job run after every sync."""

    enabled: bool
    wait_seconds: int
    max_latency_seconds: int
    max_tokens: int
    image: str | None
    resources: Resources


@dataclass(frozen=True)
class Values:
    """The merged values of one release, named and typed (the schema has checked them)."""

    name: str
    namespace: str
    target: str
    kserve_version: str
    kubernetes_version: str
    labels: dict[str, str]
    model: Model
    worker_size: int | None
    worker_resources: Resources | None
    min_replicas: int
    max_replicas: int
    gpu: Gpu
    vllm: dict[str, Any]
    shm_size: str | int
    socket_ifname: str | None
    startup_timeout_seconds: int
    ray_wait_seconds: int
    runtime_create: bool
    runtime_flavor: str
    runtime_name: str | None
    runtime_image: str | None
    pvc: Pvc
    download: Download
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, Any], ...]
    verify: Verify
    gitops: dict[str, Any]         # environment-wide; gitops.py reads it

    @classmethod
    def of(cls, data: dict[str, Any]) -> Values:
        model, worker, download = data["model"], data.get("workerSpec") or {}, data["download"]
        scheduling, pvc = data.get("scheduling") or {}, data["pvc"]
        return cls(
            name=data["name"], namespace=data["namespace"], target=data["target"],
            kserve_version=data["kserve"]["version"], kubernetes_version=data["kubernetes"]["version"],
            labels=dict(data.get("labels") or {}), model=_model(model),
            worker_size=worker.get("size"), worker_resources=worker.get("resources") or None,
            min_replicas=data["predictor"]["minReplicas"], max_replicas=data["predictor"]["maxReplicas"],
            gpu=Gpu(data["gpu"]["resourceName"], tuple(data["gpu"].get("customResourceTypes") or ()), data["gpu"]),
            vllm=dict(data["vllm"]), shm_size=data["shm"]["sizeLimit"],
            socket_ifname=(data.get("network") or {}).get("socketIfname"),
            startup_timeout_seconds=data["startup"]["timeoutSeconds"],
            ray_wait_seconds=data["startup"]["rayWaitSeconds"],
            runtime_create=data["runtime"]["create"], runtime_flavor=data["runtime"]["flavor"],
            runtime_name=data["runtime"].get("name"), runtime_image=data["runtime"].get("image"),
            pvc=Pvc(pvc["create"], pvc.get("name"), pvc.get("size"), pvc.get("storageClassName"),
                    tuple(pvc.get("accessModes") or ())),
            download=_download(download),
            node_selector=dict(scheduling.get("nodeSelector") or {}),
            tolerations=tuple(scheduling.get("tolerations") or ()),
            verify=_verify(data["verify"]), gitops=data["gitops"],
        )


def _model(model: dict[str, Any]) -> Model:
    env = tuple(EnvVar(index, item["name"], item) for index, item in enumerate(model.get("env") or []))
    return Model(model["id"], model["revision"], model["format"], model["storageUri"], model.get("architecture"),
                 env, tuple(model.get("args") or ()), model["resources"])


def _download(download: dict[str, Any]) -> Download:
    secret = download.get("tokenSecret")
    return Download(
        enabled=download["enabled"], image=download.get("image"),
        token_secret=TokenSecret(secret["name"], secret["key"]) if secret else None,
        ignore_patterns=tuple(download.get("ignorePatterns") or ()),
        active_deadline_seconds=download.get("activeDeadlineSeconds", 21600),
        backoff_limit=download.get("backoffLimit", 3),
        resources=download.get("resources") or {},
    )


def _verify(verify: dict[str, Any]) -> Verify:
    return Verify(verify["enabled"], verify["waitSeconds"], verify["maxLatencySeconds"], verify["maxTokens"],
                  verify.get("image"), verify["resources"])
