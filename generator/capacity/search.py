"""Which layouts fit: the smallest ones on a GPU type, and the ones to suggest when a requested layout's
pods are larger than a node."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from generator.capacity.architecture import Architecture
from generator.capacity.checks import CapacityProblem, CapacityReport, check, node_problems
from generator.capacity.gpus import GpuType, NodeShape, node_shape
from generator.capacity.memory import ServingSettings
from generator.capacity.topology import Layout
from generator.capacity.units import human_bytes

MAX_PODS: Final = 8


@dataclass(frozen=True)
class Candidate:
    """One layout considered by the search: whether it fits, and why (not)."""

    layout: Layout
    fits: bool
    reason: str

    def __str__(self) -> str:
        return f"{_sized(self.layout)}: {self.reason}"


@dataclass(frozen=True)
class LayoutSearch:
    """Every layout considered, smallest first (total GPUs, then fewer stages)."""

    candidates: tuple[Candidate, ...]

    @property
    def fitting(self) -> tuple[Layout, ...]:
        return tuple(c.layout for c in self.candidates if c.fits)

    @property
    def smallest(self) -> Layout | None:
        return next(iter(self.fitting), None)


def smallest_layouts(arch: Architecture, gpu: GpuType, settings: ServingSettings, gpus_per_node: int | None = None,
                     max_pods: int = MAX_PODS) -> LayoutSearch:
    """Try TP 1 up to the GPUs of one node (a pod is one node: `gpus_per_node` when declared, else the GPU
    type's largest node) and PP 1..max_pods; a layout fits when no check errs."""
    ceiling = node_shape(gpu, gpus_per_node).gpus
    layouts = sorted((Layout(tp, pp) for tp in range(1, ceiling + 1) for pp in range(1, max_pods + 1)),
                     key=lambda lay: (lay.gpus, lay.pipeline_parallel))
    return LayoutSearch(tuple(_candidate(check(arch, gpu, layout, settings, gpus_per_node=ceiling))
                              for layout in layouts))


def _candidate(report: CapacityReport) -> Candidate:
    if report.errors:
        return Candidate(report.layout, fits=False, reason="; ".join(p.message for p in report.errors))
    assert report.estimate is not None     # no layout error, so memory was estimated
    est = report.estimate
    reason = (f"fits: {human_bytes(est.weight_bytes_per_gpu)} of weights per GPU, KV cache for {est.kv_tokens:,} "
              f"tokens = {est.max_full_sequences} sequences of {est.settings.max_model_len:,}")
    return Candidate(report.layout, fits=True, reason=reason)


def _sized(layout: Layout) -> str:
    gpus = layout.gpus
    return f"{layout} ({gpus} GPU{'' if gpus == 1 else 's'})"


@dataclass(frozen=True)
class Placement:
    """Whether a requested layout's pods fit their nodes, and the layouts that fit, to suggest instead."""

    layout: Layout
    gpu: GpuType
    node: NodeShape
    same_gpus: tuple[Layout, ...]       # fitting layouts with the requested number of GPUs, fewer stages first
    smallest: tuple[Layout, ...]        # the smallest fitting layouts

    @property
    def fits_node(self) -> bool:
        return self.layout.tensor_parallel <= self.node.gpus

    @property
    def fitting(self) -> tuple[Layout, ...]:
        """The suggestions: layouts of the requested size first, then the smallest."""
        return tuple(dict.fromkeys(self.same_gpus + self.smallest))

    def suggestion(self) -> str:
        parts = []
        if self.same_gpus:
            parts.append(f"layouts of {self.layout.gpus} GPUs that fit: {', '.join(map(str, self.same_gpus))}")
        if self.smallest:
            parts.append(f"smallest layouts that fit: {', '.join(map(_sized, self.smallest))}")
        return "; ".join(parts) or f"no layout of up to {self.node.gpus} GPUs per pod fits"

    def problem(self) -> CapacityProblem | None:
        """The "node-gpus" error with the suggestions, or None when TP fits a node."""
        if self.fits_node:
            return None
        found = node_problems(self.gpu, self.layout, self.node)[0]
        return CapacityProblem(found.severity, found.code, f"{found.message}; {self.suggestion()}")


def placement(arch: Architecture, gpu: GpuType, layout: Layout, settings: ServingSettings,
              gpus_per_node: int | None = None, max_pods: int = MAX_PODS, limit: int = 3) -> Placement:
    """Does TP fit one node of `gpu` (or of `gpus_per_node` GPUs when declared), and which layouts fit,
    smallest first: up to `limit` with the requested number of GPUs and `limit` of the smallest."""
    node = node_shape(gpu, gpus_per_node)
    pods = max(max_pods, math.ceil(layout.gpus / node.gpus))
    search = smallest_layouts(arch, gpu, settings, gpus_per_node, pods)
    fitting = search.fitting
    same = tuple(lay for lay in fitting if lay.gpus == layout.gpus)
    return Placement(layout, gpu, node, same[:limit], fitting[:limit])
