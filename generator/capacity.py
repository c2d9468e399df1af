"""Capacity model: will this Llama-style model serve with vLLM on this TP x PP layout of these GPUs?

A pure estimate, run before a long download and load, to reject layouts that cannot work.
Everything is counted in bytes; `human_bytes` prints GiB (2**30) with one decimal.

Units. The "GB" in a GPU's name ("A100 80GB", "A10G 24 GB") is GiB of physical memory:
an A100 80GB carries 80 GiB = 85.9e9 bytes of HBM. `GPU_TYPES` holds, for each card, the
total the NVIDIA driver reports (NVML `memory.total`, nvidia-smi's "Total", in MiB), because
that, not the label, is what vLLM scales by `gpu_memory_utilization`. It is below the label:
GDDR6 cards (A10G, L4, L40S) give about 1/16 to ECC (24 GiB -> 23028 MiB), and the driver keeps a
little of the HBM cards (H100 80 GiB -> 81559 MiB, H200 -> 143771 MiB).

Usable memory, per GPU and pipeline stage, mirrors vLLM's profiling step:
    KV cache = total x gpu_memory_utilization - weights - reserve,
and the reserve is an estimate, not a measurement: `OVERHEAD_BYTES` for the CUDA context,
cuBLAS/NCCL workspaces and CUDA graphs, plus the activations of one batch of
`max_num_batched_tokens` (hidden state, residual and the 3 MLP intermediates of one layer),
plus float32 logits for `max_num_seqs` sequences on the last stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

GIB: Final = 1024**3
MIB: Final = 1024**2
OVERHEAD_BYTES: Final = 1 * GIB
LOGIT_BYTES: Final = 4                  # vLLM computes logits in float32
SHM_PER_GPU_BYTES: Final = 1 * GIB
SHM_MIN_BYTES: Final = 2 * GIB

DTYPE_BYTES: Final[Mapping[str, int]] = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "fp8": 1, "float8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "float8_e4m3fn": 1, "float8_e5m2": 1,
}

Severity = Literal["error", "warning"]


def dtype_bytes(name: str) -> int:
    """Bytes per element of a dtype name ("bfloat16" -> 2); ValueError for names not in `DTYPE_BYTES`."""
    try:
        return DTYPE_BYTES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(DTYPE_BYTES)}") from None


def human_bytes(amount: float) -> str:
    """`85899345920` -> `"80.0 GiB"`."""
    return f"{amount / GIB:.1f} GiB"


@dataclass(frozen=True)
class Architecture:
    """The shape of a Llama-style decoder: what weights and KV cache sizes depend on."""

    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    dtype: str = "bfloat16"
    tie_word_embeddings: bool = False
    head_dim: int | None = None         # None: hidden_size // num_attention_heads

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_attention_heads", "num_kv_heads", "intermediate_size",
                     "vocab_size", "head_dim"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        dtype_bytes(self.dtype)

    @property
    def head_size(self) -> int:
        """Per-head dimension (vLLM's name): `head_dim` when given, else hidden_size // heads."""
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_attention_heads

    @property
    def element_bytes(self) -> int:
        return dtype_bytes(self.dtype)

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> Architecture:
        """From a Hugging Face `config.json` (newer transformers write `dtype` for `torch_dtype`);
        num_key_value_heads defaults to the heads, tie_word_embeddings to false as in LlamaConfig."""
        keys = CONFIG_KEYS if "torch_dtype" in config or "dtype" not in config else CONFIG_KEYS_NEW_DTYPE
        return cls._read(config, keys)

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> Architecture:
        """From llmpack's inline values (`VALUE_KEYS`); kvHeads defaults to attentionHeads, tiedEmbeddings to
        false."""
        unknown = sorted(set(values) - set(VALUE_KEYS))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown key; expected one of {', '.join(VALUE_KEYS)}")
        return cls._read(values, VALUE_KEYS)

    @classmethod
    def _read(cls, mapping: Mapping[str, object], keys: tuple[str, ...]) -> Architecture:
        """Read the fields in declaration order, so the first bad key is the one reported."""
        hidden, layers, heads, kv_heads, intermediate, vocab, dtype, tied, head_dim = keys
        hidden_size, num_layers = _positive_int(mapping, hidden), _positive_int(mapping, layers)
        num_heads = _positive_int(mapping, heads)
        return cls(hidden_size, num_layers, num_heads, _positive_int(mapping, kv_heads, num_heads),
                   _positive_int(mapping, intermediate), _positive_int(mapping, vocab), _dtype(mapping, dtype),
                   _bool(mapping, tied, False), _optional_int(mapping, head_dim))


CONFIG_KEYS: Final = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                      "intermediate_size", "vocab_size", "torch_dtype", "tie_word_embeddings", "head_dim")
CONFIG_KEYS_NEW_DTYPE: Final = tuple("dtype" if key == "torch_dtype" else key for key in CONFIG_KEYS)
VALUE_KEYS: Final = ("hiddenSize", "layers", "attentionHeads", "kvHeads", "intermediateSize", "vocabSize", "dtype",
                     "tiedEmbeddings", "headDim")


def _positive_int(mapping: Mapping[str, object], key: str, default: int | None = None) -> int:
    value = mapping.get(key, default)
    if value is None:
        raise ValueError(f"{key}: missing")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}: expected a positive integer, got {value!r}")
    return value


def _optional_int(mapping: Mapping[str, object], key: str) -> int | None:
    return None if mapping.get(key) is None else _positive_int(mapping, key)


def _bool(mapping: Mapping[str, object], key: str, default: bool) -> bool:
    value = mapping.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    return value


def _dtype(mapping: Mapping[str, object], key: str) -> str:
    value = mapping.get(key)
    if value is None:
        raise ValueError(f"{key}: missing")
    if not isinstance(value, str) or value.lower() not in DTYPE_BYTES:
        raise ValueError(f"{key}: unknown dtype {value!r}; expected one of {', '.join(DTYPE_BYTES)}")
    return value.lower()


@dataclass(frozen=True)
class GpuType:
    """A GPU model: its label in GiB and the total its driver reports (see the module docstring)."""

    name: str
    label_gib: int
    memory_mib: int

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB


GPU_TYPES: Final[Mapping[str, GpuType]] = {gpu.name: gpu for gpu in (
    GpuType("A10G", 24, 23028),
    GpuType("L4", 24, 23034),
    GpuType("L40S", 48, 46068),
    GpuType("A100-40GB", 40, 40960),
    GpuType("A100-80GB", 80, 81920),
    GpuType("H100", 80, 81559),
    GpuType("H200", 141, 143771),
)}


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


def layer_parameters(arch: Architecture, tp: int = 1) -> int:
    """Parameters of one decoder layer held by one GPU of a TP group (tp=1: the whole layer).

    q and o are split by heads, k and v by KV heads (replicated when TP > KV heads), gate/up/down
    by the intermediate size; the two RMSNorm weights are replicated.
    """
    hidden, head = arch.hidden_size, arch.head_size
    attention = 2 * hidden * math.ceil(arch.num_attention_heads / tp) * head
    key_value = 2 * hidden * kv_heads_per_gpu(arch, tp) * head
    mlp = 3 * hidden * math.ceil(arch.intermediate_size / tp)
    return attention + key_value + mlp + 2 * hidden


def embedding_parameters(arch: Architecture, tp: int = 1) -> int:
    """One vocabulary matrix (embedding or lm_head) on one GPU: vLLM shards its rows over TP.
    vLLM's padding of the vocabulary to a multiple of 64 is ignored (128256 is one already)."""
    return math.ceil(arch.vocab_size / tp) * arch.hidden_size


def parameter_count(arch: Architecture) -> int:
    """All parameters: embeddings, layers, final norm, and lm_head unless tied to the embeddings."""
    vocab_matrices = 1 if arch.tie_word_embeddings else 2
    return vocab_matrices * embedding_parameters(arch) + arch.num_layers * layer_parameters(arch) + arch.hidden_size


def weight_bytes(arch: Architecture) -> int:
    return parameter_count(arch) * arch.element_bytes


def kv_heads_per_gpu(arch: Architecture, tp: int) -> int:
    """KV heads each GPU keeps: split over TP, or one (replicated) when TP exceeds the KV heads, as vLLM does."""
    return max(1, arch.num_kv_heads // tp)


def stage_layers(num_layers: int, pp: int) -> tuple[int, ...]:
    """Layers per pipeline stage as vLLM's `get_pp_indices` assigns them: an even split, with the
    remainder added one each to the stages before the last, from the second-to-last backwards."""
    layers = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        layers[-i] += 1
    return tuple(layers)


def stage_parameters(arch: Architecture, tp: int, layers: int, first: bool, last: bool) -> int:
    """Parameters on one GPU of a stage. The first stage holds the embedding, the last the final norm and
    the lm_head; with tied embeddings the last stage holds one copy (vLLM loads the embedding there as the
    lm_head), and a single stage holds one copy."""
    vocab_matrices = int(first) + int(last)
    if first and last and arch.tie_word_embeddings:
        vocab_matrices = 1
    norm = arch.hidden_size if last else 0
    return layers * layer_parameters(arch, tp) + vocab_matrices * embedding_parameters(arch, tp) + norm


def weight_bytes_per_gpu(arch: Architecture, layout: Layout) -> int:
    """Weights on the most loaded GPU of the layout."""
    stages = stage_layers(arch.num_layers, layout.pipeline_parallel)
    last = len(stages) - 1
    return max(stage_parameters(arch, layout.tensor_parallel, n, i == 0, i == last) for i, n in enumerate(stages)) \
        * arch.element_bytes


def kv_bytes_per_token(arch: Architecture, layers: int, tp: int, kv_cache_dtype: str = "auto") -> int:
    """KV cache bytes one token takes on one GPU: 2 (K and V) x layers x KV heads per GPU x head size x bytes."""
    element = arch.element_bytes if kv_cache_dtype == "auto" else dtype_bytes(kv_cache_dtype)
    return 2 * layers * kv_heads_per_gpu(arch, tp) * arch.head_size * element


def reserve_bytes(arch: Architecture, tp: int, settings: ServingSettings, last: bool) -> int:
    """Memory besides weights and KV cache on one GPU (an estimate, see the module docstring)."""
    activation = max(2, arch.element_bytes)     # fp8 weights still compute in 16 bits
    per_token = 2 * arch.hidden_size + 3 * math.ceil(arch.intermediate_size / tp)
    logits = settings.max_num_seqs * arch.vocab_size * LOGIT_BYTES if last else 0
    return OVERHEAD_BYTES + settings.max_num_batched_tokens * per_token * activation + logits


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
            weight_bytes=stage_parameters(arch, tp, layers, i == 0, i == last) * arch.element_bytes,
            reserve_bytes=reserve_bytes(arch, tp, settings, i == last),
            kv_bytes_per_token=kv_bytes_per_token(arch, layers, tp, settings.kv_cache_dtype),
        ) for i, layers in enumerate(stages)))


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
          shm_bytes: int | None = None) -> CapacityReport:
    """Every check on one layout; memory is estimated only for layouts vLLM can split."""
    shm = shm_problems(layout.tensor_parallel, shm_bytes) if shm_bytes is not None else []
    refused = layout_problems(arch, layout)
    if refused:
        return CapacityReport(layout, None, tuple(refused + shm))
    est = estimate(arch, gpu, layout, settings)
    return CapacityReport(layout, est, tuple(memory_problems(est) + shm))


@dataclass(frozen=True)
class Candidate:
    layout: Layout
    fits: bool
    reason: str

    def __str__(self) -> str:
        gpus = self.layout.gpus
        return f"{self.layout} ({gpus} GPU{'' if gpus == 1 else 's'}): {self.reason}"


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


def smallest_layouts(arch: Architecture, gpu: GpuType, settings: ServingSettings, gpus_per_node: int = 8,
                     max_pods: int = 8) -> LayoutSearch:
    """Try TP 1..gpus_per_node (a pod is one node) and PP 1..max_pods; a layout fits when no check errs."""
    layouts = sorted((Layout(tp, pp) for tp in range(1, gpus_per_node + 1) for pp in range(1, max_pods + 1)),
                     key=lambda lay: (lay.gpus, lay.pipeline_parallel))
    return LayoutSearch(tuple(_candidate(check(arch, gpu, layout, settings)) for layout in layouts))


def _candidate(report: CapacityReport) -> Candidate:
    if report.errors:
        return Candidate(report.layout, False, "; ".join(p.message for p in report.errors))
    assert report.estimate is not None     # no layout error, so memory was estimated
    est = report.estimate
    return Candidate(report.layout, True, f"fits: {human_bytes(est.weight_bytes_per_gpu)} of weights per GPU, "
                     f"KV cache for {est.kv_tokens:,} tokens = {est.max_full_sequences} sequences of "
                     f"{est.settings.max_model_len:,}")
