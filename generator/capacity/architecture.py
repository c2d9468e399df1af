"""The shape of a model: what its weights and KV cache sizes depend on.

Two families are sized: Llama-style decoders (Llama, Mistral, Qwen2: grouped-query attention and a
gated MLP) and Mixtral-style mixtures of experts, whose every layer holds `num_experts` copies of that
MLP and a router that sends each token to `experts_per_token` of them. A config.json of another kind
(experts of their own size, shared experts, latent attention) is refused rather than sized wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from generator.capacity.units import DTYPE_BYTES, dtype_bytes

POSITIVE_FIELDS: Final = ("hidden_size", "num_layers", "num_attention_heads", "num_kv_heads", "intermediate_size",
                          "vocab_size", "head_dim", "num_experts", "experts_per_token")


@dataclass(frozen=True)
class Architecture:
    """The numbers of a model that its memory depends on."""

    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    intermediate_size: int              # of one MLP; of one expert in a mixture of experts
    vocab_size: int
    dtype: str = "bfloat16"
    tie_word_embeddings: bool = False
    head_dim: int | None = None         # None: hidden_size // num_attention_heads
    num_experts: int = 1                # 1: a dense MLP
    experts_per_token: int = 1          # experts the router picks for each token
    attention_bias: bool = False        # q, k and v projections carry biases (Qwen2)

    def __post_init__(self) -> None:
        for name in POSITIVE_FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if self.experts_per_token > self.num_experts:
            raise ValueError(f"experts_per_token: {self.experts_per_token} is more than the {self.num_experts} "
                             "experts")
        dtype_bytes(self.dtype)

    @property
    def head_size(self) -> int:
        """Per-head dimension (vLLM's name): `head_dim` when given, else hidden_size // heads."""
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_attention_heads

    @property
    def element_bytes(self) -> int:
        return dtype_bytes(self.dtype)

    @property
    def mixture_of_experts(self) -> bool:
        return self.num_experts > 1

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> Architecture:
        """From a Hugging Face `config.json` (newer transformers write `dtype` for `torch_dtype`).

        Defaults follow the transformers config classes: num_key_value_heads is the heads,
        tie_word_embeddings false, num_experts_per_tok 2 (MixtralConfig), and attention biases are on
        for `model_type: qwen2`, whose q/k/v projections always carry them, else `attention_bias`.
        """
        _refuse_other_kinds(config)
        keys = CONFIG_KEYS if "torch_dtype" in config or "dtype" not in config else CONFIG_KEYS_NEW_DTYPE
        biased = config.get("model_type") in QKV_BIAS_MODEL_TYPES
        return cls._read(config, keys, MIXTRAL_EXPERTS_PER_TOKEN, attention_bias=biased)

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> Architecture:
        """From llmpack's inline values (`VALUE_KEYS`); kvHeads defaults to attentionHeads, tiedEmbeddings and
        attentionBias to false, experts to 1 (dense); expertsPerToken is required with experts."""
        unknown = sorted(set(values) - set(VALUE_KEYS))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown key; expected one of {', '.join(VALUE_KEYS)}")
        return cls._read(values, VALUE_KEYS, None, attention_bias=False)

    @classmethod
    def _read(cls, mapping: Mapping[str, object], keys: tuple[str, ...], experts_per_token: int | None, *,
              attention_bias: bool) -> Architecture:
        """Read the fields in declaration order, so the first bad key is the one reported."""
        hidden, layers, heads, kv_heads, intermediate, vocab, dtype, tied, head_dim, experts, per_token, bias = keys
        hidden_size, num_layers = _positive_int(mapping, hidden), _positive_int(mapping, layers)
        num_heads = _positive_int(mapping, heads)
        shape = (hidden_size, num_layers, num_heads, _positive_int(mapping, kv_heads, num_heads),
                 _positive_int(mapping, intermediate), _positive_int(mapping, vocab))
        kinds = (_dtype(mapping, dtype), _bool(mapping, tied, default=False), _optional_int(mapping, head_dim))
        num_experts = _positive_int(mapping, experts, 1)
        active = _positive_int(mapping, per_token, 1 if num_experts == 1 else experts_per_token)
        if active > num_experts:
            raise ValueError(f"{per_token}: {active} is more than the {num_experts} experts ({experts})")
        return cls(*shape, *kinds, num_experts, active, _bool(mapping, bias, default=attention_bias))


CONFIG_KEYS: Final = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                      "intermediate_size", "vocab_size", "torch_dtype", "tie_word_embeddings", "head_dim",
                      "num_local_experts", "num_experts_per_tok", "attention_bias")
CONFIG_KEYS_NEW_DTYPE: Final = tuple("dtype" if key == "torch_dtype" else key for key in CONFIG_KEYS)
VALUE_KEYS: Final = ("hiddenSize", "layers", "attentionHeads", "kvHeads", "intermediateSize", "vocabSize", "dtype",
                     "tiedEmbeddings", "headDim", "experts", "expertsPerToken", "attentionBias")
QKV_BIAS_MODEL_TYPES: Final = frozenset({"qwen2"})
MIXTRAL_EXPERTS_PER_TOKEN: Final = 2

# config.json keys of models this estimate would get wrong, and what they describe.
OTHER_KINDS: Final[Mapping[str, str]] = {
    "moe_intermediate_size": "experts of their own size",
    "n_routed_experts": "routed and shared experts",
    "num_experts": "experts of their own size",
    "n_shared_experts": "shared experts",
    "shared_expert_intermediate_size": "a shared expert",
    "kv_lora_rank": "multi-head latent attention",
}


def _refuse_other_kinds(config: Mapping[str, object]) -> None:
    for key, what in OTHER_KINDS.items():
        if config.get(key):
            raise ValueError(f"{key}: {what} cannot be sized; llmpack sizes Llama-style decoders and Mixtral-style "
                             "experts (num_local_experts)")


def _positive_int(mapping: Mapping[str, object], key: str, default: int | None = None) -> int:
    value = mapping.get(key, default)
    if value is None:
        raise ValueError(f"{key}: missing")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}: expected a positive integer, got {value!r}")
    return value


def _optional_int(mapping: Mapping[str, object], key: str) -> int | None:
    return None if mapping.get(key) is None else _positive_int(mapping, key)


def _bool(mapping: Mapping[str, object], key: str, *, default: bool) -> bool:
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
