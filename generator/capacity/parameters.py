"""Parameters of a model, and the share of them (and of the KV cache) one GPU holds under vLLM's sharding.

Per layer, with hidden size h, a heads and k KV heads of size d, MLP size I, E experts:
q and o 2·h·a·d, k and v 2·h·k·d (plus a·d + 2·k·d biases for Qwen2), the MLP 3·h·I per expert
(gate, up, down) plus an h·E router for a mixture of experts, and two RMSNorm weights 2·h.
The model adds the embedding V·h, the lm_head V·h unless tied, and the final norm h.
"""

from __future__ import annotations

import math

from generator.capacity.architecture import Architecture
from generator.capacity.topology import Layout, stage_layers
from generator.capacity.units import dtype_bytes


def kv_heads_per_gpu(arch: Architecture, tp: int) -> int:
    """KV heads each GPU keeps: split over TP, or one (replicated) when TP exceeds the KV heads, as vLLM does."""
    return max(1, arch.num_kv_heads // tp)


def attention_parameters(arch: Architecture, tp: int = 1) -> int:
    """q, k, v and o of one layer on one GPU of a TP group: q and o split by heads, k and v by KV heads
    (replicated when TP > KV heads); the q/k/v biases, when the model has them, split the same way."""
    heads, kv_heads = math.ceil(arch.num_attention_heads / tp), kv_heads_per_gpu(arch, tp)
    weights = 2 * arch.hidden_size * (heads + kv_heads) * arch.head_size
    biases = (heads + 2 * kv_heads) * arch.head_size if arch.attention_bias else 0
    return weights + biases


def mlp_parameters(arch: Architecture, tp: int = 1) -> int:
    """The MLP of one layer on one GPU: gate, up and down split over TP by the intermediate size.

    A mixture of experts holds every expert, each split the same way: vLLM's fused MoE layer gives each
    TP rank intermediate/TP of every expert (not whole experts), and every rank keeps the whole router.
    """
    experts = arch.num_experts * 3 * arch.hidden_size * math.ceil(arch.intermediate_size / tp)
    router = arch.hidden_size * arch.num_experts if arch.mixture_of_experts else 0
    return experts + router


def layer_parameters(arch: Architecture, tp: int = 1) -> int:
    """Parameters of one decoder layer held by one GPU of a TP group (tp=1: the whole layer); the two
    RMSNorm weights are replicated."""
    return attention_parameters(arch, tp) + mlp_parameters(arch, tp) + 2 * arch.hidden_size


def embedding_parameters(arch: Architecture, tp: int = 1) -> int:
    """One vocabulary matrix (embedding or lm_head) on one GPU: vLLM shards its rows over TP.
    vLLM's padding of the vocabulary to a multiple of 64 is ignored (the shipped models' are multiples)."""
    return math.ceil(arch.vocab_size / tp) * arch.hidden_size


def parameter_count(arch: Architecture) -> int:
    """All parameters: embeddings, layers, final norm, and lm_head unless tied to the embeddings."""
    vocab_matrices = 1 if arch.tie_word_embeddings else 2
    return vocab_matrices * embedding_parameters(arch) + arch.num_layers * layer_parameters(arch) + arch.hidden_size


def active_parameter_count(arch: Architecture) -> int:
    """Parameters one token goes through: a mixture of experts counts only `experts_per_token` experts."""
    idle = (arch.num_experts - arch.experts_per_token) * 3 * arch.hidden_size * arch.intermediate_size
    return parameter_count(arch) - arch.num_layers * idle


def weight_bytes(arch: Architecture) -> int:
    return parameter_count(arch) * arch.element_bytes


def stage_parameters(arch: Architecture, tp: int, layers: int, *, first: bool, last: bool) -> int:
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
    tp = layout.tensor_parallel
    return max(stage_parameters(arch, tp, n, first=i == 0, last=i == last) for i, n in enumerate(stages)) \
        * arch.element_bytes


def kv_bytes_per_token(arch: Architecture, layers: int, tp: int, kv_cache_dtype: str = "auto") -> int:
    """KV cache bytes one token takes on one GPU: 2 (K and V) x layers x KV heads per GPU x head size x bytes."""
    element = arch.element_bytes if kv_cache_dtype == "auto" else dtype_bytes(kv_cache_dtype)
    return 2 * layers * kv_heads_per_gpu(arch, tp) * arch.head_size * element
