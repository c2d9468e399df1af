"""The checks on one layout: splits vLLM refuses, pods no node can hold, memory that does not fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from generator.capacity.architecture import Architecture
from generator.capacity.gpus import GpuType, NodeShape, node_shape
from generator.capacity.memory import Estimate, ServingSettings, StageEstimate, estimate
from generator.capacity.topology import Layout
from generator.capacity.units import GIB, human_bytes

SHM_PER_GPU_BYTES: Final = 1 * GIB
SHM_MIN_BYTES: Final = 2 * GIB

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class CapacityProblem:
    """One finding: `code` is stable for tools, `message` is for people."""

    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass(frozen=True)
class CapacityReport:
    """Everything `check` found; `estimate` is None when the layout cannot be split at all."""

    layout: Layout
    estimate: Estimate | None
    problems: tuple[CapacityProblem, ...] = ()

    @property
    def errors(self) -> tuple[CapacityProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[CapacityProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors


def layout_problems(arch: Architecture, layout: Layout) -> list[CapacityProblem]:
    """The splits vLLM refuses: heads over TP (ModelConfig), KV heads over TP (QKVParallelLinear), and
    more stages than layers."""
    tp, pp, heads, kv = layout.tensor_parallel, layout.pipeline_parallel, arch.num_attention_heads, arch.num_kv_heads
    found = []
    if heads % tp:
        found.append(CapacityProblem("error", "attention-heads", f"tensor parallel size {tp} does not divide the "
                                     f"{heads} attention heads"))
    if kv >= tp and kv % tp:
        found.append(CapacityProblem("error", "kv-heads", f"tensor parallel size {tp} does not divide the {kv} KV "
                                     "heads (vLLM needs KV heads % TP == 0 when TP <= KV heads)"))
    if kv < tp and tp % kv:
        found.append(CapacityProblem("error", "kv-heads", f"tensor parallel size {tp} is not a multiple of the {kv} "
                                     "KV heads (vLLM needs TP % KV heads == 0 when TP > KV heads)"))
    if pp > arch.num_layers:
        found.append(CapacityProblem("error", "pipeline-stages", f"pipeline parallel size {pp} is more than the "
                                     f"{arch.num_layers} layers; every stage needs at least one"))
    return found


def node_problems(gpu: GpuType, layout: Layout, node: NodeShape) -> list[CapacityProblem]:
    """A pod's GPUs come from one node: TP GPUs per pod must not exceed the GPUs of a node."""
    tp = layout.tensor_parallel
    if tp <= node.gpus:
        return []
    if node.declared:
        where = f"the nodes have {node.gpus} {gpu.name} GPUs each"
    else:
        shapes = ", ".join(map(str, gpu.node_gpus))
        where = f"one {gpu.name} node has at most {node.gpus}" + (f" (common nodes: {shapes})" if
                                                                  len(gpu.node_gpus) > 1 else "")
    return [CapacityProblem("error", "node-gpus", f"tensor parallel size {tp} needs {tp} GPUs in one pod, but {where}")]


def pod_problems(node: NodeShape, cpu_millicores: int | None, memory_bytes: int | None) -> list[CapacityProblem]:
    """A pod's CPU and memory requests must fit the allocatable CPU and memory of one node, when declared."""
    found = []
    if node.cpu_millicores is not None and cpu_millicores is not None and cpu_millicores > node.cpu_millicores:
        found.append(CapacityProblem("error", "node-cpu", f"the pod requests {_cores(cpu_millicores)} CPUs, more "
                                     f"than the {_cores(node.cpu_millicores)} one node can allocate"))
    if node.memory_bytes is not None and memory_bytes is not None and memory_bytes > node.memory_bytes:
        found.append(CapacityProblem("error", "node-memory", f"the pod requests {human_bytes(memory_bytes)} of "
                                     f"memory, more than the {human_bytes(node.memory_bytes)} one node can allocate"))
    return found


def _cores(millicores: int) -> str:
    return f"{millicores / 1000:g}"


def memory_problems(est: Estimate) -> list[CapacityProblem]:
    """Weights that do not fit, a KV cache shorter than one sequence, fewer sequences than max_num_seqs."""
    settings = est.settings
    worst = min(est.stages, key=lambda s: s.budget_bytes - s.reserve_bytes - s.weight_bytes)
    if worst.weight_bytes > worst.budget_bytes - worst.reserve_bytes:
        return [CapacityProblem("error", "weights", _weights_message(est, worst))]
    tokens, length = est.kv_tokens, settings.max_model_len
    if tokens < length:
        return [CapacityProblem("error", "kv-cache", f"the KV cache holds {tokens:,} tokens, less than one sequence "
                                f"of max_model_len {length:,}")]
    if est.max_full_sequences < settings.max_num_seqs:
        return [CapacityProblem("warning", "concurrency", f"the KV cache holds {tokens:,} tokens: "
                                f"{est.max_full_sequences} sequences of {length:,} tokens, fewer than max_num_seqs "
                                f"{settings.max_num_seqs}")]
    return []


def _weights_message(est: Estimate, stage: StageEstimate) -> str:
    room = human_bytes(stage.budget_bytes - stage.reserve_bytes)
    budget = f"{est.settings.gpu_memory_utilization:g} x {human_bytes(est.gpu.memory_bytes)}"
    return (f"weights need {human_bytes(stage.weight_bytes)} per GPU (stage {stage.index + 1} of {len(est.stages)}), "
            f"more than the {room} available per {est.gpu.name} ({budget} minus {human_bytes(stage.reserve_bytes)} "
            "reserved)")


def shm_floor_bytes(tp: int) -> int:
    """The least /dev/shm for a pod of `tp` GPUs: 1 GiB per GPU, at least 2 GiB.

    A heuristic floor, not a measured need: NCCL's shared-memory transport and vLLM's worker
    message queue use /dev/shm per local GPU, and Ray puts its object store there (falling back
    to slow /tmp when it is small); the container default of 64 MiB crashes tensor parallel runs.
    """
    return max(SHM_MIN_BYTES, tp * SHM_PER_GPU_BYTES)


def shm_problems(tp: int, shm_bytes: int) -> list[CapacityProblem]:
    floor = shm_floor_bytes(tp)
    if shm_bytes >= floor:
        return []
    return [CapacityProblem("warning", "shm", f"/dev/shm of {human_bytes(shm_bytes)} is below {human_bytes(floor)} "  # noqa: S108
                            f"for {tp} GPU(s) per pod (1 GiB per GPU, at least 2 GiB)")]


def check(arch: Architecture, gpu: GpuType, layout: Layout, settings: ServingSettings,
          shm_bytes: int | None = None, gpus_per_node: int | None = None) -> CapacityReport:
    """Every check on one layout; memory is estimated only for layouts vLLM can split. A TP larger than a
    node (`gpus_per_node` when declared, else the GPU type's largest node) is an error of its own: the
    memory estimate still says whether the split would fit on bigger nodes."""
    shm = shm_problems(layout.tensor_parallel, shm_bytes) if shm_bytes is not None else []
    placed = node_problems(gpu, layout, node_shape(gpu, gpus_per_node))
    refused = layout_problems(arch, layout)
    if refused:
        return CapacityReport(layout, None, tuple(refused + placed + shm))
    est = estimate(arch, gpu, layout, settings)
    return CapacityReport(layout, est, tuple(placed + memory_problems(est) + shm))
