"""GPU models: the memory the driver reports, and how many of them one node carries.

Memory. The "GB" in a GPU's name ("A100 80GB", "A10G 24 GB") is GiB of physical memory: an
A100 80GB carries 80 GiB = 85.9e9 bytes of HBM. `GPU_TYPES` holds, for each card, the total the
NVIDIA driver reports (NVML `memory.total`, nvidia-smi's "Total", in MiB), because that, not the
label, is what vLLM scales by `gpu_memory_utilization`. It is below the label: GDDR6 cards (A10G,
L4, L40S) give about 1/16 to ECC (24 GiB -> 23028 MiB), and the driver keeps a little of the HBM
cards (H100 80 GiB -> 81559 MiB, H200 -> 143771 MiB).

GPUs per node. A pod's GPUs come from one node, so tensor parallel size (GPUs per pod) can be at
most the GPUs of the largest node of that type; `node_gpus` lists the common node shapes:
- H100, H200 (SXM): 8, on HGX/DGX boards, e.g. AWS p5.48xlarge (H100) and p5e.48xlarge (H200),
  Google Cloud a3-highgpu-8g, Azure ND H100 v5.
- A100-80GB, A100-40GB: 8, e.g. AWS p4de.24xlarge and p4d.24xlarge, Google Cloud a2-ultragpu-8g and
  a2-highgpu-8g. Google Cloud's a2-megagpu-16g carries 16 A100-40GB: declare `gpu.perNode: 16` there.
- L40S: 1, 4 or 8: AWS g6e (xlarge to 16xlarge: 1; 12xlarge, 24xlarge: 4; 48xlarge: 8).
- L4: 1, 2, 4 or 8: AWS g6 (xlarge to 16xlarge: 1; 12xlarge, 24xlarge: 4; 48xlarge: 8) and Google
  Cloud g2-standard (-4 to -16 and -32: 1; -24: 2; -48: 4; -96: 8).
- A10G: 1, 4 or 8: AWS g5 (xlarge to 16xlarge: 1; 12xlarge, 24xlarge: 4; 48xlarge: 8).
A custom GPU (`gpu.memory` without a known type) assumes 8, as the HGX boards carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from generator.capacity.units import MIB

DEFAULT_NODE_GPUS: Final = (8,)


@dataclass(frozen=True)
class GpuType:
    """A GPU model: its label in GiB, the total its driver reports, and the GPUs per node of its common
    node shapes (see the module docstring)."""

    name: str
    label_gib: int
    memory_mib: int
    node_gpus: tuple[int, ...] = DEFAULT_NODE_GPUS

    def __post_init__(self) -> None:
        if not self.node_gpus or any(n < 1 for n in self.node_gpus):
            raise ValueError(f"node_gpus: expected positive GPU counts, got {self.node_gpus}")

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB

    @property
    def max_per_node(self) -> int:
        """The most GPUs of this type one node carries: the largest tensor parallel size a pod can have."""
        return max(self.node_gpus)


GPU_TYPES: Final[Mapping[str, GpuType]] = {gpu.name: gpu for gpu in (
    GpuType("A10G", 24, 23028, (1, 4, 8)),
    GpuType("L4", 24, 23034, (1, 2, 4, 8)),
    GpuType("L40S", 48, 46068, (1, 4, 8)),
    GpuType("A100-40GB", 40, 40960, (8,)),
    GpuType("A100-80GB", 80, 81920, (8,)),
    GpuType("H100", 80, 81559, (8,)),
    GpuType("H200", 141, 143771, (8,)),
)}


@dataclass(frozen=True)
class NodeShape:
    """What one node offers one pod: GPUs, and when declared, its allocatable CPU and memory (what the
    kubelet lets pods request, below the machine's total)."""

    gpus: int
    cpu_millicores: int | None = None
    memory_bytes: int | None = None
    declared: bool = False          # gpus came from the values, not from the GPU type's table

    def __post_init__(self) -> None:
        for name in ("gpus", "cpu_millicores", "memory_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def node_shape(gpu: GpuType, per_node: int | None = None, cpu_millicores: int | None = None,
               memory_bytes: int | None = None) -> NodeShape:
    """The node a pod of this GPU type lands on: `per_node` GPUs when declared, else the type's largest node."""
    if per_node is None:
        return NodeShape(gpu.max_per_node, cpu_millicores, memory_bytes)
    return NodeShape(per_node, cpu_millicores, memory_bytes, declared=True)


def gpus_per_node(gpu: GpuType, per_node: int | None = None) -> int:
    """The tensor parallel ceiling: `per_node` when declared, else the most GPUs a node of this type carries."""
    return node_shape(gpu, per_node).gpus
