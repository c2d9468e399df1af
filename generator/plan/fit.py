"""Plan stage, fit part: can this deployment start? The model's identity, where its pods go, and
whether it fits the GPUs, the nodes and its claim.

- The model is one unit: model.id, revision and storageUri belong together, so a release that
  names another model than the chart's example must pin its own revision and give its own path
  (the example's would fetch the wrong files, or serve them). Its architecture comes from
  model.architecture or the shipped index (sizing.lookup); an unknown model is not sized, and
  the notes say so, so nothing claims it fits.
- A pod's GPUs come from one node: TP must not exceed the GPUs of a node of gpu.type (or
  gpu.perNode), and with gpu.node declared, each pod's CPU and memory requests must fit it.
- With a known model and GPU: every capacity check (sizing.check), and a claim created by the
  bundle must hold the weights.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from generator import capacity, quantity
from generator.errors import Location
from generator.load import Path_, load_file
from generator.merge import Merged
from generator.plan import sizing
from generator.plan.parallelism import Parallelism
from generator.plan.resources import Pods
from generator.plan.storage import Storage
from generator.plan.values import Issue, Values

DEFAULTS = "charts/kserve-multinode/values.yaml"     # the chart's layer name (project.py names it so)
TP_ERRORS = ("attention-heads", "kv-heads", "node-gpus")
CLAIM_HEADROOM = 1.1                                 # tokenizer, config and the marker beside the weights


def identity(merged: Merged, values: Values, chart_root: Path) -> list[Issue]:
    """A release naming another model than the chart's example gives that model's revision and path."""
    origin = merged.origins.get(("model", "id"))
    if origin is None or origin.source == DEFAULTS:    # the chart's own model: its values.yaml is not read again
        return []
    example = _example_model(chart_root)
    if values.model.id == example:
        return []
    model = values.model.id
    issues: list[Issue] = []
    if _from_defaults(merged, ("model", "revision")):
        issues.append((("model", "id"), f"pin model.revision for {model}: a 40-hex commit of its repository (the "
                       f"chart's revision belongs to {example})"))
    if _from_defaults(merged, ("model", "storageUri")):
        issues.append((("model", "id"), f"set model.storageUri for {model}: pvc://CLAIM/PATH of its own (the chart's "
                       f"path holds {example})"))
    return issues


def cluster_defaults(merged: Merged, values: Values) -> list[str]:
    """The chart's defaults that describe the seed's cluster, not yours: said, when a release keeps them."""
    notes = []
    if _from_defaults(merged, ("gpu", "type")):
        notes.append(f"gpu.type {values.gpu.raw.get('type')} is the chart's default (the seed's cluster): set your "
                     "GPU type, which the capacity and placement checks use")
    if values.pvc.create and _from_defaults(merged, ("pvc", "storageClassName")):
        notes.append(f"pvc.storageClassName {values.pvc.storage_class} is the chart's default (the seed's): the claim "
                     "stays Pending unless your cluster has this ReadWriteMany class")
    return notes


def _from_defaults(merged: Merged, path: Path_) -> bool:
    where = merged.origins.get(path)
    return where is not None and where.source == DEFAULTS


@lru_cache(maxsize=4)
def _example_model(chart_root: Path) -> str:
    return str(load_file(chart_root / "values.yaml").data.get("model", {}).get("id", ""))


def fit(values: Values, parallel: Parallelism, pods: Pods, storage: Storage,
        where: Location | None, roots: tuple[Path, Path]) -> tuple[sizing.Sizing | None, list[Issue], list[str]]:
    """The estimate of the chosen layout (None when the model or GPU is unknown), what cannot work,
    and the notes (capacity warnings, or why capacity was not checked)."""
    gpu = sizing.gpu_type(values.gpu.raw)
    found = sizing.lookup(values.model.architecture, values.model.id, where, *roots)
    if found.error is not None:
        return None, [(("model", "architecture"), found.error)], []
    issues = _placement(values, parallel, gpu, pods, known=found.known)
    if gpu is None:
        return None, issues, ["capacity not checked: set gpu.type (or gpu.memory)"]
    if found.architecture is None:
        return None, issues, [found.warning or sizing.UNKNOWN_MODEL]
    estimate = sizing.check(found.architecture, gpu, sizing.settings(values.vllm), parallel.tensor, parallel.pipeline,
                            pods.shm, sizing.gpus_per_node(values.gpu.raw))
    name = values.model.architecture if isinstance(values.model.architecture, str) else values.model.id
    for problem in estimate.report.errors:
        path = parallel.tensor_from if problem.code in TP_ERRORS else \
            parallel.pipeline_from if problem.code == "pipeline-stages" else sizing.ERROR_PATHS[problem.code]
        issues.append((path, f"{problem.message} ({name} on {gpu.name}, TP {parallel.tensor} x PP "
                       f"{parallel.pipeline}; `llmpack plan` lists layouts that fit)"))
    issues += _claim_holds(storage, found.architecture, values.model.id)
    return estimate, issues, [f"capacity: {w.message}" for w in estimate.report.warnings]


def _placement(values: Values, parallel: Parallelism, gpu: capacity.GpuType | None, pods: Pods, *,
               known: bool) -> list[Issue]:
    """TP within one node (sizing.check says it, with the layouts that fit, when the model is
    known), and each pod's requests within a declared node."""
    if gpu is None:
        return []
    issues: list[Issue] = []
    node = sizing.node_shape(values.gpu.raw, gpu)
    if not known and parallel.tensor > node.gpus:
        layouts = [f"TP{tp} x PP{parallel.total // tp}" for tp in range(node.gpus, 0, -1) if parallel.total % tp == 0]
        issues.append((parallel.tensor_from, f"tensor parallel size {parallel.tensor} needs {parallel.tensor} GPUs in "
                       f"one pod, but one {gpu.name} node has at most {node.gpus} (set gpu.perNode if yours have "
                       f"more); layouts of {parallel.total} GPUs that fit: {', '.join(layouts)}"))
    worker_path = ("workerSpec", "resources") if values.worker_resources else ("model", "resources")
    for base, resources in ((("model", "resources"), pods.head), (worker_path, pods.worker)):
        for problem in sizing.node_problems(values.gpu.raw, gpu, resources):
            field = "cpu" if problem.code == "node-cpu" else "memory"
            issues.append(((*base, "requests", field), f"{problem.message} (gpu.node)"))
    return list(dict.fromkeys(issues))


def _claim_holds(storage: Storage, arch: capacity.Architecture, model: str) -> list[Issue]:
    if not storage.create or storage.size is None:
        return []
    weights = capacity.weight_bytes(arch)
    if quantity.value(storage.size) >= weights * CLAIM_HEADROOM:
        return []
    wanted = math.ceil(weights * CLAIM_HEADROOM / 2**30 / 10) * 10
    return [(("pvc", "size"), f"a claim of {storage.size} cannot hold {model}: its weights alone are "
             f"{capacity.human_bytes(weights)} in {arch.dtype}; set at least {wanted}Gi")]
