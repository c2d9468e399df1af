"""Plan stage, capacity part: will the model fit on these GPUs with this TP x PP layout, on these nodes?

Finds the model's architecture (`model.architecture`: a shipped model name, a path to a
config.json, or inline fields; else `model.id` through the shipped index), reads `gpu.type` /
`gpu.memory`, the node shape (`gpu.perNode`, `gpu.node`) and the `vllm` settings, and runs the
estimate in `generator.capacity`. Its errors become located value problems; its warnings become
render notes. A model neither names is unknown: its capacity is not checked, and nothing says "fits".
"""

from __future__ import annotations

import errno
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from generator import capacity, files, quantity
from generator.errors import FileError, Location
from generator.load import Path_

MODELS_DIR = "models"          # below the chart: NAME.json for `model.architecture: NAME`
INDEX: Final = "index.json"    # in MODELS_DIR: Hugging Face model ids -> NAME
MAX_CONFIG_BYTES = 1024 * 1024
UNKNOWN_MODEL: Final = "unknown model: capacity not checked"


@dataclass(frozen=True)
class Sizing:
    """The estimate of the chosen layout, for the render report, the README and `llmpack plan`."""

    architecture: capacity.Architecture
    gpu: capacity.GpuType
    settings: capacity.ServingSettings
    report: capacity.CapacityReport
    gpus_per_node: int | None = None    # declared gpu.perNode; None: the GPU type's largest node

    @property
    def parameters(self) -> int:
        return capacity.parameter_count(self.architecture)

    @property
    def verdict(self) -> str:
        """"fits" when no check found anything, else every finding."""
        problems = self.report.problems
        return "; ".join(str(p) for p in problems) if problems else "fits"

    def figures(self) -> list[tuple[str, str]]:
        """(label, value) rows describing the chosen layout."""
        arch, est = self.architecture, self.report.estimate
        rows = [("parameters", f"{_parameters(arch)} ({capacity.weight_bytes(arch) / 1e9:.1f} GB in {arch.dtype})"),
                ("GPU", f"{self.gpu.name}, {capacity.human_bytes(self.gpu.memory_bytes)} "
                        f"(x {self.settings.gpu_memory_utilization:g} usable)")]
        if est is None:
            return rows
        per_token = capacity.kv_bytes_per_token(arch, max(s.layers for s in est.stages), est.layout.tensor_parallel,
                                                self.settings.kv_cache_dtype)
        return [
            *rows,
            ("weights per GPU", capacity.human_bytes(est.weight_bytes_per_gpu)),
            ("KV cache per token per GPU", f"{per_token / 1024:.1f} KiB"),
            ("KV cache tokens that fit", f"{est.kv_tokens:,}"),
            ("full-length sequences at once", f"{est.max_full_sequences} of {self.settings.max_model_len:,} tokens "
                                              f"(max_num_seqs {self.settings.max_num_seqs})"),
        ]


def _parameters(arch: capacity.Architecture) -> str:
    total = f"{capacity.parameter_count(arch) / 1e9:.2f} B"
    if not arch.mixture_of_experts:
        return total
    return f"{total}, {capacity.active_parameter_count(arch) / 1e9:.2f} B active"


@dataclass(frozen=True)
class Layouts:
    """What `llmpack plan` shows: the smallest layouts on the chosen GPU (with why smaller ones fail),
    and the smallest that fits on every other GPU type (None: none in MAX_PODS pods)."""

    ceiling: int                                    # the most GPUs one pod can have
    chosen: tuple[capacity.Candidate, ...]
    none_fits: bool
    others: tuple[tuple[capacity.GpuType, capacity.Candidate | None], ...]


def layouts(fit: Sizing, fitting: int = 3) -> Layouts:
    ceiling = capacity.gpus_per_node(fit.gpu, fit.gpus_per_node)
    search = capacity.smallest_layouts(fit.architecture, fit.gpu, fit.settings, ceiling)
    chosen: list[capacity.Candidate] = []
    for candidate in search.candidates:
        if sum(c.fits for c in chosen) >= fitting:
            break
        if candidate.fits or search.smallest is None or candidate.layout.gpus <= search.smallest.gpus:
            chosen.append(candidate)
    others = tuple((gpu, next((c for c in capacity.smallest_layouts(fit.architecture, gpu, fit.settings).candidates
                               if c.fits), None))
                   for name, gpu in capacity.GPU_TYPES.items() if name != fit.gpu.name)
    return Layouts(ceiling, tuple(chosen), search.smallest is None, others)


def layouts_report(fit: Sizing, fitting: int = 3) -> list[str]:
    found = layouts(fit, fitting)
    lines = [f"smallest layouts on {fit.gpu.name} (TP 1-{found.ceiling} GPUs per pod, PP 1-{capacity.MAX_PODS} pods):",
             *(f"  {candidate}" for candidate in found.chosen)]
    if found.none_fits:
        lines.append("  none fits: more or larger GPUs, a shorter vllm.maxModelLen or a smaller dtype")
    lines.append("smallest layout on other GPUs:")
    for gpu, best in found.others:
        lines.append(f"  {gpu.name:<10} {best or f'none fits in {capacity.MAX_PODS} pods of {gpu.max_per_node} GPUs'}")
    return lines


@dataclass(frozen=True)
class ModelArchitecture:
    """The architecture the capacity checks use and where it came from, or why there is none.

    `architecture` is None for an unknown model (`warning` says so: the caller notes it and must not
    say "fits") and for an unusable `model.architecture` (`error`, located at /model/architecture).
    """

    architecture: capacity.Architecture | None
    source: str
    error: str | None = None
    warning: str | None = None

    @property
    def known(self) -> bool:
        return self.architecture is not None


def lookup(value: Any, model_id: Any, where: Location | None, project_root: Path, chart_root: Path
           ) -> ModelArchitecture:
    """`model.architecture` when set (refused when it names a shipped model other than the one the index
    gives for `model.id`), else the shipped config `model.id` is indexed to, else an unknown model."""
    indexed = indexed_config(model_id, chart_root)
    if value is None and indexed is None:
        return ModelArchitecture(None, "unknown model", warning=f"{UNKNOWN_MODEL} ({model_id or 'no model.id'} is "
                                 f"not in the chart's {MODELS_DIR}/{INDEX}; set model.architecture)")
    if value is None:
        value, source = indexed, f"model.id {model_id} ({MODELS_DIR}/{INDEX}: {indexed})"
    else:
        source = f"model.architecture {value if isinstance(value, str) else '(inline)'}"
        if isinstance(value, str) and _is_name(value) and indexed is not None and value != indexed:
            return ModelArchitecture(None, source, error=f"{value} is not the architecture of {model_id}, which is "
                                     f"{indexed} ({MODELS_DIR}/{INDEX}); set {indexed} or remove model.architecture")
    arch = architecture(value, where, project_root, chart_root)
    if isinstance(arch, str):
        return ModelArchitecture(None, source, error=arch)
    return ModelArchitecture(arch, source)


def indexed_config(model_id: Any, chart_root: Path) -> str | None:
    """The shipped config name of a Hugging Face model id (case-insensitive, `hf://` allowed), or None."""
    if not isinstance(model_id, str):
        return None
    return _index(chart_root / MODELS_DIR / INDEX).get(model_id.strip().removeprefix("hf://").lower())


@lru_cache(maxsize=8)
def _index(path: Path) -> Mapping[str, str]:
    try:
        models = json.loads(path.read_text(encoding="utf-8"))["models"]
    except FileNotFoundError:
        return {}
    return {str(key).lower(): str(name) for key, name in models.items()}


def architecture(value: Any, where: Location | None, project_root: Path, chart_root: Path
                 ) -> capacity.Architecture | str:
    """The architecture named by `model.architecture`, or an error message."""
    try:
        if isinstance(value, dict):
            return capacity.Architecture.from_values(value)
        if str(value) == Path(INDEX).stem:
            return f"no such model config: {value} (the index of the shipped models)"
        path = _config_path(str(value), where, project_root, chart_root)
        return _from_config(files.resolved(path) or path)
    except FileNotFoundError as err:
        return f"no such model config: {err.filename}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"cannot read the model config: {err}"
    except ValueError as err:
        return f"invalid architecture: {err}"


@lru_cache(maxsize=64)
def _from_config(path: Path) -> capacity.Architecture | str:
    """Read once per process: a fleet's releases mostly name the same few models."""
    try:
        text = files.read_text(path, str(path), limit=MAX_CONFIG_BYTES, what="config.json")
    except FileError as err:   # through the boundary: a FIFO, /dev/zero or a link loop is refused, never read
        return f"no such model config: {path}" if err.code == errno.ENOENT else f"model config {err}"
    return capacity.Architecture.from_config(json.loads(text))


def _is_name(value: str) -> bool:
    return "/" not in value and not value.endswith(".json")


def _config_path(value: str, where: Location | None, project_root: Path, chart_root: Path) -> Path:
    """A bare name is a model shipped with the chart; a path is relative to the file that set it."""
    if _is_name(value):
        return chart_root / MODELS_DIR / f"{value}.json"
    path = Path(value)
    if path.is_absolute() or where is None or where.line is None:
        return path if path.is_absolute() else project_root / path
    return (project_root / where.source).parent / path


def gpu_type(values: dict[str, Any]) -> capacity.GpuType | None:
    """`gpu.type`, or a custom size from `gpu.memory` (keeping the node shapes of a known type)."""
    name, memory = values.get("type"), values.get("memory")
    if memory is not None:
        mib = int(quantity.value(memory) // capacity.MIB)
        known = capacity.GPU_TYPES.get(str(name))
        shapes = known.node_gpus if known else capacity.DEFAULT_NODE_GPUS
        return capacity.GpuType(str(name or "custom GPU"), round(mib / 1024), mib, shapes)
    return capacity.GPU_TYPES[name] if name else None


def gpus_per_node(values: dict[str, Any]) -> int | None:
    """`gpu.perNode`: the GPUs of one node when declared; None lets the GPU type's largest node decide."""
    value = values.get("perNode")
    return None if value is None else int(value)


def node_shape(values: dict[str, Any], gpu: capacity.GpuType) -> capacity.NodeShape:
    """One node: `gpu.perNode` GPUs (else the GPU type's largest node) and the allocatable `gpu.node.cpu`
    and `gpu.node.memory` when declared."""
    node = values.get("node") or {}
    return capacity.node_shape(gpu, gpus_per_node(values), _millicores(node.get("cpu")), _bytes(node.get("memory")))


def node_problems(values: dict[str, Any], gpu: capacity.GpuType, resources: dict[str, Any]
                  ) -> list[capacity.CapacityProblem]:
    """A pod's CPU and memory requests against the declared node (`values` is `gpu`, `resources` the
    pod's); a missing request counts as its limit, as Kubernetes defaults it."""
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    cpu, memory = requests.get("cpu", limits.get("cpu")), requests.get("memory", limits.get("memory"))
    return capacity.pod_problems(node_shape(values, gpu), _millicores(cpu), _bytes(memory))


def _millicores(amount: Any) -> int | None:
    return None if amount is None else math.ceil(quantity.value(amount) * 1000)


def _bytes(amount: Any) -> int | None:
    return None if amount is None else math.ceil(quantity.value(amount))


def settings(vllm: dict[str, Any]) -> capacity.ServingSettings:
    return capacity.ServingSettings(max_model_len=vllm["maxModelLen"],
                                    gpu_memory_utilization=vllm["gpuMemoryUtilization"],
                                    max_num_seqs=vllm["maxNumSeqs"])


def check(arch: capacity.Architecture, gpu: capacity.GpuType, serving: capacity.ServingSettings, tensor: int,
          pipeline: int, shm: str, gpus_per_node: int | None = None) -> Sizing:
    """Every capacity check of the chosen layout; a TP larger than a node lists the layouts that fit."""
    layout = capacity.Layout(tensor, pipeline)
    report = capacity.check(arch, gpu, layout, serving, int(quantity.value(shm)), gpus_per_node)
    if any(p.code == "node-gpus" for p in report.problems):
        placed = capacity.placement(arch, gpu, layout, serving, gpus_per_node).problem()
        report = replace(report, problems=tuple(placed if placed and p.code == "node-gpus" else p
                                                for p in report.problems))
    return Sizing(arch, gpu, serving, report, gpus_per_node)


# Where each capacity error is reported: the value a user would change. The plan stage locates the
# TP errors (attention-heads, kv-heads, node-gpus) at the TENSOR_PARALLEL_SIZE entry when it has one.
ERROR_PATHS: dict[str, Path_] = {
    "attention-heads": ("model", "env"),
    "kv-heads": ("model", "env"),
    "node-gpus": ("model", "env"),
    "pipeline-stages": ("model", "env"),
    "weights": ("gpu", "type"),
    "kv-cache": ("vllm", "maxModelLen"),
    "node-cpu": ("model", "resources", "requests", "cpu"),
    "node-memory": ("model", "resources", "requests", "memory"),
}
