"""How a model is split: TP GPUs in each of PP pods, and the layers each pipeline stage gets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """TP GPUs in each of PP pods (pipeline stages)."""

    tensor_parallel: int
    pipeline_parallel: int

    def __post_init__(self) -> None:
        if self.tensor_parallel < 1 or self.pipeline_parallel < 1:
            raise ValueError(f"tensor and pipeline parallel sizes must be at least 1, got {self}")

    @property
    def gpus(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel

    def __str__(self) -> str:
        return f"TP{self.tensor_parallel} x PP{self.pipeline_parallel}"


def stage_layers(num_layers: int, pp: int) -> tuple[int, ...]:
    """Layers per pipeline stage as vLLM's `get_pp_indices` assigns them: an even split, with the
    remainder added one each to the stages before the last, from the second-to-last backwards."""
    layers = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        layers[-i] += 1
    return tuple(layers)
