"""Memory of one layout: weights, reserve and KV cache on every pipeline stage.

Usable memory, per GPU and pipeline stage, mirrors vLLM's profiling step:
    KV cache = total x gpu_memory_utilization - weights - reserve,
and the reserve is an estimate, not a measurement: `OVERHEAD_BYTES` for the CUDA context,
cuBLAS/NCCL workspaces and CUDA graphs, plus the activations of one batch of
`max_num_batched_tokens` (hidden state, residual and the 3 MLP intermediates of one layer, for each
expert a token is routed to), plus float32 logits for `max_num_seqs` sequences on the last stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from generator.capacity.architecture import Architecture
from generator.capacity.gpus import GpuType
from generator.capacity.parameters import kv_bytes_per_token, stage_parameters
from generator.capacity.topology import Layout, stage_layers
from generator.capacity.units import GIB, dtype_bytes

OVERHEAD_BYTES: Final = 1 * GIB
LOGIT_BYTES: Final = 4                  # vLLM computes logits in float32


@dataclass(frozen=True)
class ServingSettings:
    """The vLLM server settings memory depends on. `max_num_batched_tokens` is vLLM V1's chunked-prefill
    step for its OpenAI server on large GPUs (2048 on small ones, so the reserve errs high there)."""

    max_model_len: int = 8192
    gpu_memory_utilization: float = 0.9
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    kv_cache_dtype: str = "auto"        # "auto": the model's dtype
    block_size: int = 16                # vLLM allocates the KV cache in blocks of this many tokens

    def __post_init__(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization: expected a number in (0, 1], got {self.gpu_memory_utilization}")
        for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "block_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if self.kv_cache_dtype != "auto":
            dtype_bytes(self.kv_cache_dtype)


def reserve_bytes(arch: Architecture, tp: int, settings: ServingSettings, *, last: bool) -> int:
    """Memory besides weights and KV cache on one GPU (an estimate, see the module docstring)."""
    activation = max(2, arch.element_bytes)     # fp8 weights still compute in 16 bits
    mlp = 3 * math.ceil(arch.intermediate_size / tp) * arch.experts_per_token
    logits = settings.max_num_seqs * arch.vocab_size * LOGIT_BYTES if last else 0
    return OVERHEAD_BYTES + settings.max_num_batched_tokens * (2 * arch.hidden_size + mlp) * activation + logits


@dataclass(frozen=True)
class StageEstimate:
    """One GPU of one pipeline stage (all GPUs of a stage hold the same amounts)."""

    index: int
    layers: int
    budget_bytes: int           # total x gpu_memory_utilization
    weight_bytes: int
    reserve_bytes: int
    kv_bytes_per_token: int

    @property
    def kv_cache_bytes(self) -> int:
        """Usable memory left for the KV cache (0 when weights and reserve do not fit)."""
        return max(0, self.budget_bytes - self.weight_bytes - self.reserve_bytes)

    def kv_tokens(self, block_size: int) -> int:
        """Tokens the KV cache holds, in whole blocks as vLLM allocates them."""
        return self.kv_cache_bytes // (self.kv_bytes_per_token * block_size) * block_size


@dataclass(frozen=True)
class Estimate:
    """The memory of a layout; vLLM sizes every stage's KV cache to the smallest stage's."""

    layout: Layout
    gpu: GpuType
    settings: ServingSettings
    stages: tuple[StageEstimate, ...]

    @property
    def weight_bytes_per_gpu(self) -> int:
        return max(stage.weight_bytes for stage in self.stages)

    @property
    def kv_tokens(self) -> int:
        return min(stage.kv_tokens(self.settings.block_size) for stage in self.stages)

    @property
    def max_full_sequences(self) -> int:
        """Sequences of max_model_len tokens that fit in the KV cache at once."""
        return self.kv_tokens // self.settings.max_model_len


def estimate(arch: Architecture, gpu: GpuType, layout: Layout, settings: ServingSettings) -> Estimate:
    """Weights, reserve and KV cache of every stage; ValueError when a stage would get no layer."""
    if layout.pipeline_parallel > arch.num_layers:
        raise ValueError(f"pipeline parallel size {layout.pipeline_parallel} exceeds {arch.num_layers} layers")
    tp, stages = layout.tensor_parallel, stage_layers(arch.num_layers, layout.pipeline_parallel)
    budget = int(gpu.memory_bytes * settings.gpu_memory_utilization)
    last = len(stages) - 1
    return Estimate(layout, gpu, settings, tuple(
        StageEstimate(
            index=i, layers=layers, budget_bytes=budget,
            weight_bytes=stage_parameters(arch, tp, layers, first=i == 0, last=i == last) * arch.element_bytes,
            reserve_bytes=reserve_bytes(arch, tp, settings, last=i == last),
            kv_bytes_per_token=kv_bytes_per_token(arch, layers, tp, settings.kv_cache_dtype),
        ) for i, layers in enumerate(stages)))
