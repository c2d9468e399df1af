"""Plan stage, parallelism part: the seed's vocabulary read into tensor and pipeline sizes.

TP is TENSOR_PARALLEL_SIZE (default 1); PP is PIPELINE_PARALLEL_SIZE, else workerSpec.size + 1,
else 2. The variable wins over workerSpec.size, and the notes say which input decided. The two
variables leave the env (no KServe release accepts them there): the bundle carries
workerSpec.tensorParallelSize / pipelineParallelSize instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from generator.load import Path_
from generator.plan.values import EnvVar, Issue, Values
from generator.releases import CONTROLLER_ENV, PP_ENV, TP_ENV, KServeRelease

MAX_TENSOR, MAX_PIPELINE = 16, 64          # GPUs in one pod, pods in one Ray cluster


@dataclass(frozen=True)
class Parallelism:
    """The tensor and pipeline parallel sizes, and the values they came from."""

    tensor: int
    pipeline: int
    tensor_from: Path_                      # the value a user would change, for located problems
    pipeline_from: Path_
    env: tuple[dict[str, Any], ...]         # the user's env without TP/PP
    notes: tuple[str, ...]                  # how the sizes were derived

    @property
    def workers(self) -> int:
        return self.pipeline - 1

    @property
    def total(self) -> int:
        return self.tensor * self.pipeline


def parallelism(values: Values, kserve: KServeRelease) -> tuple[Parallelism, list[Issue]]:
    sizes, kept, issues = _read_env(values.model.env)
    tensor, tensor_from = sizes.get(TP_ENV, (1, ("model", "env")))
    pipeline, pipeline_from, notes = _pipeline(sizes, values.worker_size)
    notes.append(f"tensor parallel size {tensor}" + (f" taken from {TP_ENV}" if TP_ENV in sizes
                                                     else " by default (set TENSOR_PARALLEL_SIZE)"))
    found = Parallelism(tensor, pipeline, tensor_from, pipeline_from, tuple(kept), tuple(notes))
    return found, issues + _limits(found, kserve)


def _read_env(env: tuple[EnvVar, ...]) -> tuple[dict[str, tuple[int, Path_]], list[dict[str, Any]], list[Issue]]:
    """TP and PP (with the path of their value), the other variables, and what is wrong with them."""
    sizes: dict[str, tuple[int, Path_]] = {}
    kept: list[dict[str, Any]] = []
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for var in env:
        path: Path_ = ("model", "env", var.index)
        if var.name in seen:
            issues.append(((*path, "name"), f"{var.name} is set twice (also at index {seen[var.name]})"))
            continue
        seen[var.name] = var.index
        if ("value" in var.item) == ("valueFrom" in var.item):
            issues.append((path, f"{var.name} needs exactly one of value or valueFrom"))
        elif var.name in (TP_ENV, PP_ENV):
            number, issue = _whole_number(var, path)
            issues += [issue] if issue else []
            if number is not None:
                sizes[var.name] = (number, (*path, "value"))
        elif var.name in CONTROLLER_ENV:
            issues.append(((*path, "name"), f"{var.name} is set by the KServe controller, which would "
                           "overwrite it; remove it"))
        else:
            kept.append(dict(var.item))
    return sizes, kept, issues


def _whole_number(var: EnvVar, path: Path_) -> tuple[int | None, Issue | None]:
    if "valueFrom" in var.item:
        return None, ((*path, "valueFrom"), f"{var.name} must be a literal value: llmpack derives GPU counts and "
                      "pod counts from it")
    text = str(var.item["value"])
    if not re.fullmatch(r"[0-9]{1,4}", text.strip()):
        return None, ((*path, "value"), f"{var.name} must be a whole number such as \"2\"; got {text!r}")
    return int(text), None


def _pipeline(sizes: dict[str, tuple[int, Path_]], size: int | None) -> tuple[int, Path_, list[str]]:
    if PP_ENV in sizes:
        pipeline, path = sizes[PP_ENV]
        if size is not None and size + 1 != pipeline:
            return pipeline, path, [f"pipeline parallel size {pipeline} taken from {PP_ENV}; workerSpec.size="
                                    f"{size} ignored (it would mean {size + 1} nodes)"]
        return pipeline, path, [f"pipeline parallel size {pipeline} taken from {PP_ENV}"]
    if size is not None:
        return size + 1, ("workerSpec", "size"), [f"pipeline parallel size {size + 1} taken from "
                                                  f"workerSpec.size={size} (+1 head)"]
    return 2, ("model", "env"), [f"pipeline parallel size 2 by default (set {PP_ENV} or workerSpec.size)"]


def _limits(found: Parallelism, kserve: KServeRelease) -> list[Issue]:
    issues: list[Issue] = []
    if found.tensor < kserve.min_tensor:
        issues.append((found.tensor_from, f"tensor parallel size must be at least {kserve.min_tensor}; got "
                       f"{found.tensor}"))
    if found.tensor > MAX_TENSOR:
        issues.append((found.tensor_from, f"tensor parallel size is the GPUs of one pod: at most {MAX_TENSOR}; "
                       f"got {found.tensor}"))
    if found.pipeline > MAX_PIPELINE:
        issues.append((found.pipeline_from, f"pipeline parallel size is the pods of one Ray cluster: at most "
                       f"{MAX_PIPELINE}; got {found.pipeline}"))
    if found.pipeline < kserve.min_pipeline:
        issues.append((found.pipeline_from, f"KServe {kserve.version} needs a pipeline parallel size of at least "
                       f"{kserve.min_pipeline} (head + workers){kserve.min_pipeline_note}; got {found.pipeline}"))
    return issues
