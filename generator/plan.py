"""Stage 4, plan: turn valid values into the facts the templates need.

This is where the seed's vocabulary (TENSOR_PARALLEL_SIZE, PIPELINE_PARALLEL_SIZE,
workerSpec.size) becomes what the target KServe release accepts, where GPU counts,
names and annotations are derived, and where every rule KServe's admission webhooks
would enforce at apply time is enforced now, with the file and line to fix.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import quantity, sizing
from generator.errors import Problem, ValuesError
from generator.load import Path_
from generator.merge import Merged
from generator.releases import KNOWN_GPU_RESOURCES, RELEASES, KServeRelease, gpu_allocation

MAX_ISVC_NAME = 41
MAX_TENSOR, MAX_PIPELINE = 16, 64          # GPUs in one pod, pods in one Ray cluster
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
IMAGE = re.compile(r"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                   r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?")
PROBE_PERIOD_SECONDS = 30
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
TP_ENV, PP_ENV = "TENSOR_PARALLEL_SIZE", "PIPELINE_PARALLEL_SIZE"
CONTROLLER_ENV = ("RAY_NODE_COUNT", "REQUEST_GPU_COUNT", "MODEL_NAME", "MODEL_DIR", "INFERENCE_SERVICE_NAME",
                  "ISVC_NAME", "HEAD_SVC", "WORKER_SVC")
SERVER_ARGS = ("--tensor-parallel-size", "--tensor_parallel_size", "--pipeline-parallel-size",
               "--pipeline_parallel_size", "--model_dir", "--model-dir", "--model_name", "--model-name")
VLLM_ARGS = {"maxModelLen": "--max-model-len", "gpuMemoryUtilization": "--gpu-memory-utilization",
             "maxNumSeqs": "--max-num-seqs"}
MARKER_FILE = ".llmpack-complete"


@dataclass(frozen=True)
class Plan:
    """Everything derived for one release; the templates read this and `values`."""

    release: str
    name: str
    namespace: str
    target: str
    kserve: KServeRelease
    tensor_parallel: int
    pipeline_parallel: int
    workers: int
    gpu_resource: str
    gpu_resource_types: tuple[str, ...]   # custom names for the KServe annotation
    image: str
    download_image: str
    runtime_name: str
    runtime_create: bool
    runtime_flavor: str                   # "llmpack" (vllm-runtime image) or "kserve" (upstream image)
    storage_uri: str
    claim: str | None                     # None for oci://
    model_path: str
    pvc_create: bool
    pvc_size: str | None
    download_job: str | None              # Job name, None when no download
    download_resources: dict[str, dict[str, str]]
    marker: str                           # content of the completion marker file
    env: tuple[dict[str, Any], ...]       # user env, TP/PP removed
    head_resources: dict[str, dict[str, str]]
    worker_resources: dict[str, dict[str, str]]
    shm_size: str
    startup_failure_threshold: int
    worker_startup_failure_threshold: int
    labels: dict[str, str]
    isvc_annotations: dict[str, str]
    notes: tuple[str, ...]
    argocd: bool = False                  # add Argo CD sync waves
    kubernetes_version: str = "1.33"
    token_secret: tuple[str, str] | None = None
    server_args: tuple[str, ...] = ()     # vllm.* settings, then model.args
    sizing: sizing.Sizing | None = None   # the capacity estimate, when the values allow one
    marker_file: str = MARKER_FILE
    probe_period: int = PROBE_PERIOD_SECONDS

    @property
    def total_gpus(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel


class _Rules:
    """Collects located problems so a render reports all of them at once."""

    def __init__(self, merged: Merged) -> None:
        self.merged = merged
        self.problems: list[Problem] = []

    def fail(self, path: Path_, message: str) -> None:
        problem = Problem(self.merged.locate(path), path, message)
        if problem not in self.problems:
            self.problems.append(problem)

    def get(self, *path: str | int) -> Any:
        node: Any = self.merged.data
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node


def plan(merged: Merged, release: str, context: str = "", roots: tuple[Path, Path] = (Path("."), Path(".")),
         capacity_errors: bool = True) -> Plan:
    """Derive the plan of one release, or raise `ValuesError` with every rule it breaks.

    `roots` are the project and chart folders (for model configs named in the values);
    `capacity_errors=False` turns capacity errors into notes (for `llmpack plan`)."""
    rules = _Rules(merged)
    values = merged.data
    kserve = RELEASES[values["kserve"]["version"]]
    name: str = values["name"]
    notes: list[str] = []

    _check_names(rules, name, values["namespace"])
    tensor, pipeline, env, (tp_path, pp_path) = _parallelism(rules, kserve, notes)
    _check_model(rules, kserve)
    claim, model_path = _storage(rules, kserve)
    _check_pvc(rules, claim, workers=max(pipeline - 1, 0))
    gpu_resource, custom_gpus = _gpu(rules)
    head = _resources(rules, ("model", "resources"), gpu_resource, tensor)
    worker_path = ("workerSpec", "resources") if rules.get("workerSpec", "resources") else ("model", "resources")
    worker = _resources(rules, worker_path, gpu_resource, tensor)
    shm = _shm(rules, head, worker)
    fit = _capacity(rules, roots, tensor, pipeline, shm, {"tp": tp_path, "pp": pp_path}, notes, capacity_errors)
    server_args = _server_args(rules)
    download_resources = _resources(rules, ("download", "resources"), gpu_resource, 0)
    _check_replicas(rules)
    runtime_name = _runtime_name(rules, name)
    for tool, key in (("argocd", "repoURL"), ("flux", "url")):
        if values["gitops"][tool]["enabled"] and not values["gitops"][tool].get(key):
            rules.fail(("gitops", tool), f"gitops.{tool}.{key} is required when gitops.{tool}.enabled is true: "
                       "the git repository that holds rendered/")
    if values["target"] == "raw":
        if not values["runtime"]["create"]:
            rules.fail(("runtime", "create"), "target raw renders the pods itself and needs llmpack's runtime "
                       "definition (runtime.create: true)")
        if claim is None and not rules.problems:
            rules.fail(("model", "storageUri"), "target raw needs a pvc:// storageUri (OCI model images need "
                       "KServe's modelcar support)")
    if not values["runtime"]["create"] and values["model"]["args"]:
        rules.fail(("model", "args"), "server arguments need the bundle's own runtime (runtime.create: true); "
                   "a cluster runtime's command would be replaced by them")
    labels = _labels(rules, name, release)

    if rules.problems:
        raise ValuesError(rules.problems, context)

    pods, head_gpus, worker_gpus = gpu_allocation(tensor * pipeline, tensor, tensor)
    if (pods, head_gpus, worker_gpus or tensor) != (pipeline, tensor, tensor):
        raise AssertionError(f"GPU allocation {pods}x{head_gpus}/{worker_gpus} != PP {pipeline} x TP {tensor}")

    flavor = values["runtime"]["flavor"]
    image = values["runtime"].get("image") or (kserve.llmpack_image if flavor == "llmpack" else kserve.image)
    if "@sha256:" not in image:
        notes.append(f"image {image} is pinned by tag; pin it by digest (IMAGE@sha256:...) for reproducible pods")
    download = values["download"]
    download_image = download.get("image") or image
    revision = values["model"]["revision"]
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        notes.append(f"model.revision {revision!r} is not a commit sha; a tag can move, a sha cannot")
    if download["enabled"] and not download.get("tokenSecret"):
        notes.append("download.tokenSecret is unset: the download works only for public models")

    return Plan(
        release=release, name=name, namespace=values["namespace"], target=values["target"], kserve=kserve,
        tensor_parallel=tensor, pipeline_parallel=pipeline, workers=pipeline - 1,
        gpu_resource=gpu_resource, gpu_resource_types=custom_gpus, image=image, download_image=download_image,
        runtime_name=runtime_name, runtime_create=values["runtime"]["create"], runtime_flavor=flavor,
        storage_uri=values["model"]["storageUri"], claim=claim, model_path=model_path,
        pvc_create=bool(claim) and values["pvc"]["create"],
        pvc_size=quantity.canonical(values["pvc"]["size"]) if values["pvc"].get("size") is not None else None,
        download_job=_job_name(name, values, download_image) if download["enabled"] else None,
        download_resources=download_resources,
        marker=f"{values['model']['id']}@{revision}",
        env=env, head_resources=head, worker_resources=worker, shm_size=shm,
        startup_failure_threshold=math.ceil(values["startup"]["timeoutSeconds"] / PROBE_PERIOD_SECONDS),
        worker_startup_failure_threshold=math.ceil(values["startup"]["rayWaitSeconds"] / 10) + 3,
        labels=labels, isvc_annotations=_isvc_annotations(kserve, custom_gpus), notes=tuple(notes),
        kubernetes_version=values["kubernetes"]["version"], argocd=values["gitops"]["argocd"]["enabled"],
        server_args=server_args, sizing=fit,
        token_secret=(secret["name"], secret["key"]) if (secret := download.get("tokenSecret")) else None,
    )


def values_digest(values: dict[str, Any]) -> str:
    text = json.dumps(values, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _check_names(rules: _Rules, name: str, namespace: str) -> None:
    if len(name) > MAX_ISVC_NAME or not DNS_LABEL.fullmatch(name):
        rules.fail(("name",), f"InferenceService name {name!r} must be at most {MAX_ISVC_NAME} characters of "
                   "a-z, 0-9 and '-', start with a letter and end with a letter or digit (KServe builds "
                   "63-character pod labels from it: isvc.NAME-predictor-worker)")
    if len(namespace) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", namespace):
        rules.fail(("namespace",), f"namespace {namespace!r} must be a DNS-1123 label (a-z, 0-9, '-', "
                   "at most 63 characters)")


def _parallelism(rules: _Rules, kserve: KServeRelease, notes: list[str]
                 ) -> tuple[int, int, tuple[dict[str, Any], ...], tuple[Path_, Path_]]:
    """The seed's rules: TP from TENSOR_PARALLEL_SIZE (default 1); PP from PIPELINE_PARALLEL_SIZE,
    else workerSpec.size + 1, else 2. The env var wins over workerSpec.size."""
    env_values: dict[str, tuple[int, Path_]] = {}
    kept: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(rules.get("model", "env") or []):
        path: Path_ = ("model", "env", index)
        env_name = item["name"]
        if env_name in seen:
            rules.fail((*path, "name"), f"{env_name} is set twice (also at index {seen[env_name]})")
            continue
        seen[env_name] = index
        if ("value" in item) == ("valueFrom" in item):
            rules.fail(path, f"{env_name} needs exactly one of value or valueFrom")
            continue
        if env_name in (TP_ENV, PP_ENV):
            number = _positive_int(rules, path, item)
            if number is not None:
                env_values[env_name] = (number, path)
            continue
        if env_name in CONTROLLER_ENV:
            rules.fail((*path, "name"), f"{env_name} is set by the KServe controller, which would overwrite "
                       "it; remove it")
            continue
        kept.append(dict(item))

    tensor = env_values.get(TP_ENV, (1, ("model", "env")))[0]
    size = rules.get("workerSpec", "size")
    if PP_ENV in env_values:
        pipeline, pp_path = env_values[PP_ENV]
        if size is not None and size + 1 != pipeline:
            notes.append(f"pipeline parallel size {pipeline} taken from {PP_ENV}; workerSpec.size={size} "
                         f"ignored (it would mean {size + 1} nodes)")
        else:
            notes.append(f"pipeline parallel size {pipeline} taken from {PP_ENV}")
    elif size is not None:
        pipeline, pp_path = size + 1, ("workerSpec", "size")
        notes.append(f"pipeline parallel size {pipeline} taken from workerSpec.size={size} (+1 head)")
    else:
        pipeline, pp_path = 2, ("model", "env")
        notes.append(f"pipeline parallel size 2 by default (set {PP_ENV} or workerSpec.size)")
    notes.append(f"tensor parallel size {tensor}" + (f" taken from {TP_ENV}" if TP_ENV in env_values
                                                     else " by default (set TENSOR_PARALLEL_SIZE)"))

    if tensor < kserve.min_tensor:
        rules.fail((*env_values[TP_ENV][1], "value"),
                   f"tensor parallel size must be at least {kserve.min_tensor}; got {tensor}")
    if tensor > MAX_TENSOR:
        rules.fail((*env_values[TP_ENV][1], "value"), f"tensor parallel size is the GPUs of one pod: at most "
                   f"{MAX_TENSOR}; got {tensor}")
    if pipeline > MAX_PIPELINE:
        rules.fail((*pp_path, "value") if PP_ENV in env_values else pp_path,
                   f"pipeline parallel size is the pods of one Ray cluster: at most {MAX_PIPELINE}; got {pipeline}")
    if pipeline < kserve.min_pipeline:
        later = " (0.15.1 and later accept 1)" if kserve.version == "0.15.0" else ""
        where = (*pp_path, "value") if PP_ENV in env_values else pp_path
        rules.fail(where, f"KServe {kserve.version} needs a pipeline parallel size of at least "
                   f"{kserve.min_pipeline} (head + workers){later}; got {pipeline}")
    tp_path = (*env_values[TP_ENV][1], "value") if TP_ENV in env_values else ("model", "env")
    pp_where = (*pp_path, "value") if PP_ENV in env_values else pp_path
    return tensor, pipeline, tuple(kept), (tp_path, pp_where)


def _capacity(rules: _Rules, roots: tuple[Path, Path], tensor: int, pipeline: int, shm: str,
              paths: dict[str, Path_], notes: list[str], errors: bool) -> sizing.Sizing | None:
    """The capacity estimate of the chosen layout; its errors are located at the value to change."""
    values = rules.merged.data
    gpu = sizing.gpu_type(values["gpu"])
    named = values["model"].get("architecture")
    if named is None or gpu is None:
        notes.append("capacity not checked: set model.architecture and gpu.type (or gpu.memory)")
        return None
    if rules.problems or tensor < 1 or pipeline < 1:
        return None
    arch = sizing.architecture(named, rules.merged.locate(("model", "architecture")), *roots)
    if isinstance(arch, str):
        rules.fail(("model", "architecture"), arch)
        return None
    fit = sizing.check(arch, gpu, sizing.settings(values["vllm"]), tensor, pipeline, shm)
    for problem in fit.report.errors:
        where = paths["tp"] if problem.code in ("attention-heads", "kv-heads") else \
            paths["pp"] if problem.code == "pipeline-stages" else sizing.ERROR_PATHS[problem.code]
        if errors:
            rules.fail(where, f"{problem.message} ({_model_name(named)} on {gpu.name}, TP {tensor} x PP "
                       f"{pipeline}; `llmpack plan` lists layouts that fit)")
        else:
            notes.append(f"capacity: {problem.message}")
    notes += [f"capacity: {w.message}" for w in fit.report.warnings]
    return fit


def _model_name(named: Any) -> str:
    return named if isinstance(named, str) else "the model"


def _server_args(rules: _Rules) -> tuple[str, ...]:
    """vLLM settings from `vllm`, then `model.args`; an argument may come from one place only."""
    vllm = rules.get("vllm") or {}
    args = tuple(f"{flag}={vllm[key]}" for key, flag in VLLM_ARGS.items() if key in vllm)
    for index, arg in enumerate(rules.get("model", "args") or []):
        flag = arg.split("=", 1)[0].strip()
        owner = next((key for key, known in VLLM_ARGS.items() if flag in (known, known.replace("-", "_"))), None)
        if owner is not None:
            rules.fail(("model", "args", index), f"{flag} comes from vllm.{owner}; set it there instead")
    return args + tuple(rules.get("model", "args") or [])


def _positive_int(rules: _Rules, path: Path_, item: dict[str, Any]) -> int | None:
    if "valueFrom" in item:
        rules.fail((*path, "valueFrom"), f"{item['name']} must be a literal value: llmpack derives GPU counts "
                   "and pod counts from it")
        return None
    text = item["value"]
    if not re.fullmatch(r"[0-9]{1,4}", text.strip()):
        rules.fail((*path, "value"), f"{item['name']} must be a whole number such as \"2\"; got {text!r}")
        return None
    return int(text)


def _check_model(rules: _Rules, kserve: KServeRelease) -> None:
    model_format = str(rules.get("model", "format"))
    if model_format.lower() == "triton":
        rules.fail(("model", "format"), "Triton cannot serve multi-node: the multi-node runtime is vLLM with "
                   "Ray; use format huggingface")
    elif model_format != "huggingface":
        rules.fail(("model", "format"), f"model format {model_format!r} is not supported: multi-node serving "
                   "runs KServe's huggingface (vLLM) runtime; use format huggingface")
    for index, arg in enumerate(rules.get("model", "args") or []):
        flag = arg.split("=", 1)[0].strip()
        if flag in SERVER_ARGS:
            rules.fail(("model", "args", index), f"{flag} is set by llmpack from the values (parallel sizes, "
                       "model name and directory); remove it")
        if CONTROL.search(arg):
            rules.fail(("model", "args", index), "control characters (NUL, escape, ...) cannot be passed to a "
                       "program; remove them")
    for index, item in enumerate(rules.get("model", "env") or []):
        if CONTROL.search(str(item.get("value", ""))):
            rules.fail(("model", "env", index, "value"), "control characters (NUL, escape, ...) cannot be passed "
                       "in an environment variable; remove them")
    for path in (("runtime", "image"), ("download", "image")):
        image = rules.get(*path)
        if image is not None and (not IMAGE.fullmatch(image) or image.endswith(":latest")
                                  or not (":" in image.rsplit("/", 1)[-1] or "@sha256:" in image)):
            rules.fail(path, "must be a pinned image reference: REPOSITORY:TAG (not latest) or "
                       "REPOSITORY@sha256:DIGEST")


def _storage(rules: _Rules, kserve: KServeRelease) -> tuple[str | None, str]:
    uri: str = rules.get("model", "storageUri")
    path: Path_ = ("model", "storageUri")
    if uri.startswith("oci://"):
        if not kserve.oci_storage:
            rules.fail(path, f"KServe {kserve.version} accepts only pvc:// storage for multi-node; oci:// needs "
                       "0.16 or later")
        elif rules.get("download", "enabled"):
            rules.fail(("download", "enabled"), "must be false with an oci:// storageUri: the model comes "
                       "from the image")
        elif rules.get("pvc", "create"):
            rules.fail(("pvc", "create"), "must be false with an oci:// storageUri: no claim is used")
        return None, ""
    match = re.fullmatch(r"pvc://([^/]+)/(.+)", uri)
    if not match:
        allowed = "pvc://CLAIM/PATH" + (" or oci://IMAGE" if kserve.oci_storage else "")
        rules.fail(path, f"multi-node serving needs a shared volume: storageUri must be {allowed}; got {uri!r}")
        return None, ""
    claim, model_path = match.group(1), match.group(2).strip("/")
    if len(claim) > 253 or not DNS_SUBDOMAIN.fullmatch(claim):
        rules.fail(path, f"claim name {claim!r} is not a valid PersistentVolumeClaim name")
    parts = model_path.split("/")
    if not model_path or any(p in ("", ".", "..") for p in parts) or not re.fullmatch(r"[A-Za-z0-9._/-]+",
                                                                                      model_path):
        rules.fail(path, f"path {model_path!r} in storageUri must be a relative path of letters, digits, "
                   "'.', '_', '-' and '/' without '..'")
    return claim, model_path


def _check_pvc(rules: _Rules, claim: str | None, workers: int) -> None:
    if claim is None:
        return
    create = rules.get("pvc", "create")
    declared = rules.get("pvc", "name")
    if create and declared not in (None, claim):
        rules.fail(("pvc", "name"), f"claim {claim!r} of model.storageUri is neither created by this bundle "
                   f"(pvc.name is {declared!r}) nor declared existing (pvc.create: false)")
    if create and rules.get("pvc", "size") is None:
        rules.fail(("pvc",), "size is required when pvc.create is true (e.g. size: 50Gi)")
    modes = rules.get("pvc", "accessModes") or []
    if workers > 0 and "ReadWriteMany" not in modes:
        rules.fail(("pvc", "accessModes"), f"claim {claim!r} must offer ReadWriteMany: head and {workers} "
                   f"worker pod(s) mount it from different nodes (got {', '.join(modes)})")


def _gpu(rules: _Rules) -> tuple[str, tuple[str, ...]]:
    name: str = rules.get("gpu", "resourceName")
    custom = tuple(rules.get("gpu", "customResourceTypes") or ())
    if name not in KNOWN_GPU_RESOURCES and name not in custom:
        rules.fail(("gpu", "resourceName"), f"unknown GPU resource {name!r}: KServe knows "
                   f"{', '.join(KNOWN_GPU_RESOURCES)}; list others in gpu.customResourceTypes")
    return name, tuple(c for c in custom if c not in KNOWN_GPU_RESOURCES)


def _resources(rules: _Rules, path: Path_, gpu: str, tensor: int) -> dict[str, dict[str, str]]:
    """Canonical requests/limits of one container, with the GPU count set to TP in both."""
    given = rules.get(*path) or {}
    missing = [f"{kind}.{name}" for kind in ("requests", "limits") for name in ("cpu", "memory")
               if name not in (given.get(kind) or {})]
    if missing:
        rules.fail(path, f"set {', '.join(missing)}: every container runs with CPU and memory requests and limits")
    known_gpus = (*KNOWN_GPU_RESOURCES, *(rules.get("gpu", "customResourceTypes") or ()))
    result: dict[str, dict[str, str]] = {}
    for kind in ("requests", "limits"):
        result[kind] = {}
        for resource, amount in sorted((given.get(kind) or {}).items()):
            here = (*path, kind, resource)
            try:
                canonical = quantity.canonical(amount)
            except ValueError as err:
                rules.fail(here, str(err))
                continue
            if resource in known_gpus:
                if resource != gpu or quantity.value(amount) != tensor:
                    rules.fail(here, f"GPUs are set by llmpack: {gpu} = tensor parallel size ({tensor}) on head "
                               "and workers; remove this entry")
                continue
            result[kind][resource] = canonical
        if tensor:
            result[kind][gpu] = str(tensor)
    for resource, limit in result["limits"].items():
        request = result["requests"].get(resource)
        if request is not None and quantity.value(request) > quantity.value(limit):
            rules.fail((*path, "requests", resource), f"request {request} is above the limit {limit}")
    return result


def _shm(rules: _Rules, *pods: dict[str, dict[str, str]]) -> str:
    size = rules.get("shm", "sizeLimit")
    try:
        canonical = quantity.canonical(size)
    except ValueError as err:
        rules.fail(("shm", "sizeLimit"), str(err))
        return "0"
    for resources in pods:
        limit = resources["limits"].get("memory")
        if limit is not None and quantity.value(canonical) > quantity.value(limit):
            rules.fail(("shm", "sizeLimit"), f"/dev/shm of {canonical} is memory-backed and must fit in the "  # noqa: S108
                       f"pod's memory limit of {limit}")
            break
    return canonical


def _check_replicas(rules: _Rules) -> None:
    for key in ("minReplicas", "maxReplicas"):
        count = rules.get("predictor", key)
        if count != 1:
            rules.fail(("predictor", key), f"multi-node serving needs exactly one head pod; got {key} {count} "
                       "(more heads are left out of the Ray cluster; add nodes with PIPELINE_PARALLEL_SIZE)")


def _runtime_name(rules: _Rules, name: str) -> str:
    declared = rules.get("runtime", "name")
    if not rules.get("runtime", "create") and not declared:
        rules.fail(("runtime", "create"), "runtime.name is required when runtime.create is false: it names "
                   "the cluster's (Cluster)ServingRuntime to use")
    if declared and (len(declared) > 253 or not DNS_SUBDOMAIN.fullmatch(declared)):
        rules.fail(("runtime", "name"), f"runtime name {declared!r} is not a valid object name")
    return str(declared or f"{name}-runtime")


def _labels(rules: _Rules, name: str, release: str) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": release,
              "app.kubernetes.io/managed-by": "llmpack"}
    for key, value in sorted((rules.get("labels") or {}).items()):
        here: Path_ = ("labels", key)
        problem = label_problem(key, value)
        if key in labels:
            rules.fail(here, f"label {key} is set by llmpack; remove it")
        elif problem:
            rules.fail(here, problem)
        else:
            labels[key] = value
    return labels


def label_problem(key: str, value: str) -> str | None:
    """Why a label is invalid in Kubernetes, or None."""
    if not _label_key_ok(key):
        return "not a valid label key (optional DNS prefix/, then at most 63 of A-Z a-z 0-9 - _ .)"
    if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
        return "label values are at most 63 characters of A-Z a-z 0-9 - _ . (alphanumeric at both ends)"
    return None


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name))


def _isvc_annotations(kserve: KServeRelease, custom_gpus: tuple[str, ...]) -> dict[str, str]:
    annotations = {"serving.kserve.io/deploymentMode": kserve.deployment_mode,
                   "serving.kserve.io/autoscalerClass": kserve.autoscaler_class}
    if custom_gpus:
        annotations["serving.kserve.io/gpu-resource-types"] = json.dumps(list(custom_gpus))
    return annotations


def _job_name(name: str, values: dict[str, Any], image: str) -> str:
    """Jobs are immutable: a new model, revision, target or image gets a new Job name."""
    model = values["model"]
    key = "\0".join((model["id"], model["revision"], model["storageUri"], image))
    return f"{name}-download-{hashlib.sha256(key.encode()).hexdigest()[:8]}"

