"""The shipped model configs against their published parameter counts, the index of Hugging Face ids that
names them, and how a config.json or inline values describe experts and attention biases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator.capacity import (
    GPU_TYPES,
    Architecture,
    Layout,
    ServingSettings,
    active_parameter_count,
    attention_parameters,
    check,
    layer_parameters,
    mlp_parameters,
    parameter_count,
    reserve_bytes,
    weight_bytes_per_gpu,
)

MODELS = Path(__file__).resolve().parent.parent / "charts/kserve-multinode/models"


def config(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((MODELS / f"{name}.json").read_text())
    return loaded


def model(name: str) -> Architecture:
    return Architecture.from_config(config(name))


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key.lower() for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys: {sorted(k for k in keys if keys.count(k) > 1)}"
    return dict(pairs)


INDEX = json.loads((MODELS / "index.json").read_text(), object_pairs_hook=unique_keys)

# One row per model a platform team serves: its Hugging Face id, the shipped config the index gives it, and the
# parameter count published for it, total (and active per token for a mixture of experts), with where.
#   HF = the safetensors total the Hugging Face model page shows ("Model size"), in full where it is published so.
PUBLISHED: list[tuple[str, str, float, float | None, str]] = [
    ("meta-llama/Meta-Llama-3-8B-Instruct", "llama-3-8b", 8_030_261_248, None, "HF, 8.03B"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3-8b", 8_030_261_248, None, "HF, 8.03B"),
    ("meta-llama/Meta-Llama-3-70B-Instruct", "llama-3-70b", 70_553_706_496, None, "HF, 70.6B"),
    ("meta-llama/Llama-3.1-70B-Instruct", "llama-3-70b", 70_553_706_496, None, "HF, 70.6B"),
    ("meta-llama/Llama-3.3-70B-Instruct", "llama-3-70b", 70.6e9, None, "HF, 70.6B"),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "llama-3-70b", 70.6e9, None, "HF, 70.6B (Llama-3.3-70B based)"),
    ("meta-llama/Llama-3.1-405B-Instruct", "llama-3.1-405b", 405_853_388_800, None, "HF, 406B (405.85B)"),
    ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b", 7_615_616_512, None, "HF, 7.62B; model card: 7.61B"),
    ("Qwen/Qwen2.5-32B-Instruct", "qwen2.5-32b", 32_763_876_352, None, "HF, 32.8B; model card: 32.5B"),
    ("Qwen/Qwen2.5-72B-Instruct", "qwen2.5-72b", 72.7e9, None, "model card: 72.7B (HF 72,706,203,648)"),
    ("Qwen/Qwen2.5-72B", "qwen2.5-72b", 72.7e9, None, "model card: 72.7B"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b", 46.7e9, 12.9e9,
     "Mistral AI, Mixtral of Experts: 46.7B total, 12.9B active (HF 46,702,792,704)"),
    ("mistralai/Mixtral-8x22B-Instruct-v0.1", "mixtral-8x22b", 141e9, 39e9,
     "Mistral AI, Mixtral 8x22B announcement: 141B total, 39B active (HF 140.6B)"),
    ("mistralai/Mistral-Large-Instruct-2407", "mistral-large-123b", 123e9, None, "model card: 123B (HF 122.6B)"),
    ("mistralai/Mistral-Large-Instruct-2411", "mistral-large-123b", 123e9, None, "model card: 123B"),
]


@pytest.mark.parametrize(("model_id", "name", "total", "active", "source"), PUBLISHED)
def test_shipped_configs_count_the_published_parameters(model_id: str, name: str, total: float, active: float | None,
                                                        source: str) -> None:
    assert INDEX["models"][model_id] == name, source
    arch = model(name)
    assert parameter_count(arch) == pytest.approx(total, rel=0.01), source
    assert active_parameter_count(arch) == pytest.approx(active or total, rel=0.01), source


def test_every_shipped_config_is_in_the_table_and_the_index() -> None:
    shipped = {path.stem for path in MODELS.glob("*.json")} - {"index"}
    assert shipped == {name for _, name, *_ in PUBLISHED} == set(INDEX["configs"]) == set(INDEX["models"].values())
    for name, source in INDEX["configs"].items():
        assert INDEX["models"][source] == name, f"{name} was taken from {source}, which the index must name"
        assert config(name)["model_type"] in ("llama", "qwen2", "mixtral", "mistral")


def test_the_index_names_base_and_instruct_models_in_their_common_spellings() -> None:
    ids = INDEX["models"]
    for spelling in ("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B",
                     "meta-llama/Meta-Llama-3.1-405B", "Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-32B",
                     "mistralai/Mixtral-8x7B-v0.1", "mistralai/Mixtral-8x22B-v0.1"):
        assert spelling in ids


# Exact counts, by hand:
#   Mixtral-8x7B layer: q, o 2 x 4096 x 4096 = 33,554,432; k, v 2 x 4096 x 1024 = 8,388,608;
#     8 experts x 3 x 4096 x 14336 = 1,409,286,144; router 4096 x 8 = 32,768; norms 8,192    -> 1,451,270,144
#     model: 32 x 1,451,270,144 + 2 x 32000 x 4096 + 4096                                    = 46,702,792,704
#   Qwen2.5-7B layer: q, o 2 x 3584 x 3584 = 25,690,112; k, v 2 x 3584 x 512 = 3,670,016;
#     q/k/v biases 3584 + 2 x 512 = 4,608; MLP 3 x 3584 x 18944 = 203,685,888; norms 7,168   ->   233,057,792
#     model: 28 x 233,057,792 + 2 x 152064 x 3584 + 3584                                     =  7,615,616,512
@pytest.mark.parametrize(("name", "layer", "total"), [
    ("mixtral-8x7b", 1_451_270_144, 46_702_792_704),
    ("qwen2.5-7b", 233_057_792, 7_615_616_512),
])
def test_experts_and_biases_are_counted_by_hand(name: str, layer: int, total: int) -> None:
    assert layer_parameters(model(name)) == layer
    assert parameter_count(model(name)) == total


# Mixtral-8x7B at TP 8: every GPU holds 1/8 of every expert's intermediate (14336 / 8 = 1792) and the whole router:
#   q, o 2 x 4096 x 512 = 4,194,304; k, v 2 x 4096 x 128 = 1,048,576; experts 8 x 3 x 4096 x 1792 = 176,160,768;
#   router 32,768; norms 8,192 -> 181,444,608 per layer; one stage: 32 x 181,444,608 + 2 x 4000 x 4096 + 4096
#   = 5,838,999,552 parameters = 11,677,999,104 bytes.
def test_experts_split_over_tensor_parallel_ranks_and_the_router_is_replicated() -> None:
    mixtral = model("mixtral-8x7b")
    assert mlp_parameters(mixtral, 8) == 176_160_768 + 32_768
    assert layer_parameters(mixtral, 8) == 181_444_608
    assert weight_bytes_per_gpu(mixtral, Layout(8, 1)) == 11_677_999_104


def test_qwen2_biases_split_with_their_heads() -> None:
    # TP 4: 7 heads and 1 KV head per GPU: 2 x 3584 x 8 x 128 weights + (7 + 2) x 128 biases
    assert attention_parameters(model("qwen2.5-7b"), 4) == 7_340_032 + 1_152


def test_moe_activations_are_reserved_for_the_active_experts() -> None:
    # 1 GiB + 8192 tokens x (2 x 4096 + 2 experts x 3 x 1792) x 2 bytes + 256 x 32000 x 4 bytes of logits
    assert reserve_bytes(model("mixtral-8x7b"), 8, ServingSettings(), last=True) == 1_416_888_320


@pytest.mark.parametrize(("name", "layout", "gpu"), [
    ("qwen2.5-72b", Layout(8, 2), "H100"),          # the layout of issue #14
    ("llama-3.1-405b", Layout(8, 2), "H100"),
    ("mixtral-8x22b", Layout(8, 1), "H100"),
    ("mistral-large-123b", Layout(8, 1), "H200"),
])
def test_large_shipped_models_fit_their_usual_layouts(name: str, layout: Layout, gpu: str) -> None:
    assert check(model(name), GPU_TYPES[gpu], layout, ServingSettings()).ok


def test_qwen2_7b_has_28_heads_so_tensor_parallel_8_is_refused() -> None:
    assert [p.code for p in check(model("qwen2.5-7b"), GPU_TYPES["L4"], Layout(8, 1), ServingSettings()).errors] == [
        "attention-heads"]


def test_config_json_reads_experts_and_the_qwen2_biases() -> None:
    mixtral = model("mixtral-8x7b")
    assert (mixtral.num_experts, mixtral.experts_per_token, mixtral.mixture_of_experts) == (8, 2, True)
    assert model("qwen2.5-72b").attention_bias and not model("llama-3-70b").attention_bias
    without_top_k = {k: v for k, v in config("mixtral-8x7b").items() if k != "num_experts_per_tok"}
    assert Architecture.from_config(without_top_k).experts_per_token == 2      # MixtralConfig's default
    assert Architecture.from_config({**config("llama-3-8b"), "attention_bias": True}).attention_bias


@pytest.mark.parametrize(("extra", "message"), [
    ({"moe_intermediate_size": 768, "num_experts": 128}, "moe_intermediate_size: experts of their own size cannot "
                                                         "be sized"),
    ({"n_routed_experts": 256}, "n_routed_experts: routed and shared experts cannot be sized"),
    ({"kv_lora_rank": 512}, "kv_lora_rank: multi-head latent attention cannot be sized"),
    ({"num_local_experts": 2, "num_experts_per_tok": 3}, "num_experts_per_tok: 3 is more than the 2 experts "
                                                          r"\(num_local_experts\)"),
])
def test_config_json_of_a_kind_the_estimate_would_get_wrong_is_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        Architecture.from_config({**config("llama-3-8b"), **extra})


INLINE_MIXTRAL = {"hiddenSize": 4096, "layers": 32, "attentionHeads": 32, "kvHeads": 8, "intermediateSize": 14336,
                  "vocabSize": 32000, "dtype": "bfloat16", "experts": 8, "expertsPerToken": 2}


def test_inline_values_describe_experts_and_biases() -> None:
    assert Architecture.from_values(INLINE_MIXTRAL) == model("mixtral-8x7b")
    qwen = {"hiddenSize": 3584, "layers": 28, "attentionHeads": 28, "kvHeads": 4, "intermediateSize": 18944,
            "vocabSize": 152064, "dtype": "bfloat16", "attentionBias": True}
    assert Architecture.from_values(qwen) == model("qwen2.5-7b")


@pytest.mark.parametrize(("values", "message"), [
    ({k: v for k, v in INLINE_MIXTRAL.items() if k != "expertsPerToken"}, "expertsPerToken: missing"),
    ({**INLINE_MIXTRAL, "expertsPerToken": 9}, r"expertsPerToken: 9 is more than the 8 experts \(experts\)"),
    ({**INLINE_MIXTRAL, "attentionBias": "yes"}, "attentionBias: expected true or false"),
])
def test_inline_expert_errors_name_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        Architecture.from_values(values)


def test_a_dense_model_routes_to_its_one_mlp() -> None:
    with pytest.raises(ValueError, match=r"^experts_per_token: 2 is more than the 1 experts"):
        Architecture(4096, 32, 32, 8, 14336, 32000, experts_per_token=2)
