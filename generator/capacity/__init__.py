"""Capacity model: will this model serve with vLLM on this TP x PP layout of these GPUs?

A pure estimate, run before a long download and load, to reject layouts that cannot work.
Everything is counted in bytes; `human_bytes` prints GiB (2**30) with one decimal. The parts:

- `architecture`: the model's shape, from a config.json or inline values (dense or Mixtral-style MoE);
- `parameters`: parameters of the model and the share one GPU holds under vLLM's sharding;
- `gpus`: GPU memory as the driver reports it, and the GPUs per node of each type;
- `topology`: TP x PP layouts and the layers of each pipeline stage;
- `memory`: weights, reserve and KV cache per stage;
- `checks`: the splits vLLM refuses, pods larger than a node, memory that does not fit;
- `search`: the smallest layouts that fit, and the suggestions for a layout no node can hold.
"""

from __future__ import annotations

from generator.capacity.architecture import (
    CONFIG_KEYS,
    CONFIG_KEYS_NEW_DTYPE,
    VALUE_KEYS,
    Architecture,
)
from generator.capacity.checks import (
    SHM_MIN_BYTES,
    SHM_PER_GPU_BYTES,
    CapacityProblem,
    CapacityReport,
    Severity,
    check,
    layout_problems,
    memory_problems,
    node_problems,
    pod_problems,
    shm_floor_bytes,
    shm_problems,
)
from generator.capacity.gpus import DEFAULT_NODE_GPUS, GPU_TYPES, GpuType, NodeShape, gpus_per_node, node_shape
from generator.capacity.memory import (
    LOGIT_BYTES,
    OVERHEAD_BYTES,
    Estimate,
    ServingSettings,
    StageEstimate,
    estimate,
    reserve_bytes,
)
from generator.capacity.parameters import (
    active_parameter_count,
    attention_parameters,
    embedding_parameters,
    kv_bytes_per_token,
    kv_heads_per_gpu,
    layer_parameters,
    mlp_parameters,
    parameter_count,
    stage_parameters,
    weight_bytes,
    weight_bytes_per_gpu,
)
from generator.capacity.search import (
    MAX_PODS,
    Candidate,
    LayoutSearch,
    Placement,
    placement,
    smallest_layouts,
)
from generator.capacity.topology import Layout, stage_layers
from generator.capacity.units import DTYPE_BYTES, GIB, MIB, dtype_bytes, human_bytes

__all__ = [
    "CONFIG_KEYS", "CONFIG_KEYS_NEW_DTYPE", "DEFAULT_NODE_GPUS", "DTYPE_BYTES", "GIB", "GPU_TYPES", "LOGIT_BYTES",
    "MAX_PODS", "MIB", "OVERHEAD_BYTES", "SHM_MIN_BYTES", "SHM_PER_GPU_BYTES", "VALUE_KEYS",
    "Architecture", "Candidate", "CapacityProblem", "CapacityReport", "Estimate", "GpuType", "Layout",
    "LayoutSearch", "NodeShape", "Placement", "ServingSettings", "Severity", "StageEstimate",
    "active_parameter_count", "attention_parameters", "check", "dtype_bytes", "embedding_parameters", "estimate",
    "gpus_per_node", "human_bytes", "kv_bytes_per_token", "kv_heads_per_gpu", "layer_parameters", "layout_problems",
    "memory_problems", "mlp_parameters", "node_problems", "node_shape", "parameter_count", "placement",
    "pod_problems", "reserve_bytes", "shm_floor_bytes", "shm_problems", "smallest_layouts", "stage_layers",
    "stage_parameters", "weight_bytes", "weight_bytes_per_gpu",
]
