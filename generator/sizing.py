"""Plan stage, capacity part: will the model fit on these GPUs with this TP x PP layout?

Reads `model.architecture` (a shipped model name, a path to a config.json, or inline
fields), `gpu.type` / `gpu.memory` and the `vllm` settings, and runs the estimate in
capacity.py. Its errors become located value problems; its warnings become render notes.
Without an architecture or a GPU size there is nothing to estimate and the render says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from generator import capacity, quantity
from generator.errors import Location
from generator.load import Path_

MODELS_DIR = "models"          # below the chart: NAME.json for `model.architecture: NAME`
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Sizing:
    """The estimate of the chosen layout, for the render report, the README and `llmpack plan`."""

    architecture: capacity.Architecture
    gpu: capacity.GpuType
    settings: capacity.ServingSettings
    report: capacity.CapacityReport

    @property
    def parameters(self) -> int:
        return capacity.parameter_count(self.architecture)

    def figures(self) -> list[tuple[str, str]]:
        """(label, value) rows describing the chosen layout."""
        arch, est = self.architecture, self.report.estimate
        rows = [("parameters", f"{self.parameters / 1e9:.2f} B ({capacity.weight_bytes(arch) / 1e9:.1f} GB in "
                               f"{arch.dtype})"),
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


def layouts_report(fit: Sizing, fitting: int = 3) -> list[str]:
    """The smallest layouts on the chosen GPU (with why smaller ones fail), then on every other GPU."""
    search = capacity.smallest_layouts(fit.architecture, fit.gpu, fit.settings)
    lines = [f"smallest layouts on {fit.gpu.name} (TP 1-8 GPUs per pod, PP 1-8 pods):"]
    shown = 0
    for candidate in search.candidates:
        if shown >= fitting:
            break
        if candidate.fits or search.smallest is None or candidate.layout.gpus <= search.smallest.gpus:
            lines.append(f"  {candidate}")
            shown += candidate.fits
    if search.smallest is None:
        lines.append("  none fits: more or larger GPUs, a shorter vllm.maxModelLen or a smaller dtype")
    lines.append("smallest layout on other GPUs:")
    for name, gpu in capacity.GPU_TYPES.items():
        if name == fit.gpu.name:
            continue
        other = capacity.smallest_layouts(fit.architecture, gpu, fit.settings)
        best = next((c for c in other.candidates if c.fits), None)
        lines.append(f"  {name:<10} {best if best else 'none fits in 8 pods of 8 GPUs'}")
    return lines


def architecture(value: Any, where: Location | None, project_root: Path, chart_root: Path
                 ) -> capacity.Architecture | str:
    """The architecture named by `model.architecture`, or an error message."""
    try:
        if isinstance(value, dict):
            return capacity.Architecture.from_values(value)
        return _from_config(_config_path(str(value), where, project_root, chart_root).resolve())
    except FileNotFoundError as err:
        return f"no such model config: {err.filename}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"cannot read the model config: {err}"
    except ValueError as err:
        return f"invalid architecture: {err}"


@lru_cache(maxsize=64)
def _from_config(path: Path) -> capacity.Architecture | str:
    """Read once per process: a fleet's releases mostly name the same few models."""
    if path.stat().st_size > MAX_CONFIG_BYTES:
        return f"{path} is larger than a config.json can be"
    return capacity.Architecture.from_config(json.loads(path.read_text(encoding="utf-8")))


def _config_path(value: str, where: Location | None, project_root: Path, chart_root: Path) -> Path:
    """A bare name is a model shipped with the chart; a path is relative to the file that set it."""
    if "/" not in value and not value.endswith(".json"):
        return chart_root / MODELS_DIR / f"{value}.json"
    path = Path(value)
    if path.is_absolute() or where is None or where.line is None:
        return path if path.is_absolute() else project_root / path
    return (project_root / where.source).parent / path


def gpu_type(values: dict[str, Any]) -> capacity.GpuType | None:
    name, memory = values.get("type"), values.get("memory")
    if memory is not None:
        mib = int(quantity.value(memory) // capacity.MIB)
        return capacity.GpuType(str(name or "custom GPU"), round(mib / 1024), mib)
    return capacity.GPU_TYPES[name] if name else None


def settings(vllm: dict[str, Any]) -> capacity.ServingSettings:
    return capacity.ServingSettings(max_model_len=vllm["maxModelLen"],
                                    gpu_memory_utilization=vllm["gpuMemoryUtilization"],
                                    max_num_seqs=vllm["maxNumSeqs"])


def check(arch: capacity.Architecture, gpu: capacity.GpuType, serving: capacity.ServingSettings, tensor: int,
          pipeline: int, shm: str) -> Sizing:
    layout = capacity.Layout(tensor, pipeline)
    report = capacity.check(arch, gpu, layout, serving, int(quantity.value(shm)))
    return Sizing(arch, gpu, serving, report)


# Where each capacity error is reported: the value a user would change.
ERROR_PATHS: dict[str, Path_] = {
    "attention-heads": ("model", "env"),
    "kv-heads": ("model", "env"),
    "pipeline-stages": ("model", "env"),
    "weights": ("gpu", "type"),
    "kv-cache": ("vllm", "maxModelLen"),
}
