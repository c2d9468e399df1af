"""The capacity model against numbers worked out by hand, and the layouts it accepts and refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.capacity import (
    GIB,
    GPU_TYPES,
    Architecture,
    Layout,
    ServingSettings,
    check,
    embedding_parameters,
    human_bytes,
    kv_bytes_per_token,
    kv_heads_per_gpu,
    parameter_count,
    shm_floor_bytes,
    smallest_layouts,
    stage_layers,
    stage_parameters,
    weight_bytes,
    weight_bytes_per_gpu,
)

MODELS = Path(__file__).resolve().parent.parent / "charts/kserve-multinode/models"


def model(name: str) -> Architecture:
    return Architecture.from_config(json.loads((MODELS / f"{name}.json").read_text()))


LLAMA_8B = model("llama-3-8b")
LLAMA_70B = model("llama-3-70b")
SETTINGS = ServingSettings()   # max_model_len 8192, utilization 0.9, 256 seqs, 8192 batched tokens, KV in bf16

# Parameters of one layer (head_dim 128, GQA with 8 KV heads, no biases):
#   8B:  q, o 2 x 4096 x 4096 = 33,554,432; k, v 2 x 4096 x 1024 = 8,388,608;
#        gate, up, down 3 x 4096 x 14336 = 176,160,768; 2 norms 8,192          -> 218,112,000
#   70B: q, o 2 x 8192 x 8192 = 134,217,728; k, v 2 x 8192 x 1024 = 16,777,216;
#        gate, up, down 3 x 8192 x 28672 = 704,643,072; 2 norms 16,384        -> 855,654,400
# Whole model = layers x layer + embedding + lm_head (vocab 128256 x hidden each) + final norm:
#   8B:  32 x 218,112,000 + 2 x 525,336,576 + 4,096     = 8,030,261,248
#   70B: 80 x 855,654,400 + 2 x 1,050,673,152 + 8,192   = 70,553,706,496
# bf16 weights = 2 bytes each: 16,060,522,496 (published "about 16 GB") and 141,107,412,992 ("about 141 GB").


@pytest.mark.parametrize(("arch", "params", "weights", "published"), [
    (LLAMA_8B, 8_030_261_248, 16_060_522_496, 16e9),
    (LLAMA_70B, 70_553_706_496, 141_107_412_992, 141e9),
])
def test_parameters_and_weights_match_the_hand_count(arch: Architecture, params: int, weights: int,
                                                     published: float) -> None:
    assert parameter_count(arch) == params
    assert weight_bytes(arch) == weights
    assert weight_bytes(arch) == pytest.approx(published, rel=0.02)


def test_tied_embeddings_count_the_vocabulary_matrix_once() -> None:
    tied = Architecture(**{**LLAMA_8B.__dict__, "tie_word_embeddings": True})
    assert parameter_count(LLAMA_8B) - parameter_count(tied) == 128256 * 4096


# Stage of a layout: its layers on TP GPUs, plus the embedding (first stage) or lm_head and norm (last stage):
#   8B TP1 PP2, last stage:  16 x 218,112,000 + 525,336,576 + 4,096 = 4,015,132,672 params = 8,030,265,344 bytes
#   70B TP4 PP2, one layer on one GPU: q, o 2 x 8192 x 2048 = 33,554,432; k, v 2 x 8192 x 2 x 128 = 4,194,304;
#       MLP 3 x 8192 x 7168 = 176,160,768; norms 16,384 -> 213,925,888;
#       last stage: 40 x 213,925,888 + 32064 x 8192 + 8,192 = 8,819,712,000 params = 17,639,424,000 bytes
#   70B TP1 PP2, last stage: 40 x 855,654,400 + 1,050,673,152 + 8,192 = 35,276,857,344 params = 70,553,714,688 bytes
@pytest.mark.parametrize(("arch", "layout", "expected"), [
    (LLAMA_8B, Layout(1, 1), 16_060_522_496),
    (LLAMA_8B, Layout(1, 2), 8_030_265_344),
    (LLAMA_70B, Layout(4, 2), 17_639_424_000),
    (LLAMA_70B, Layout(1, 2), 70_553_714_688),
])
def test_weights_on_the_most_loaded_gpu(arch: Architecture, layout: Layout, expected: int) -> None:
    assert weight_bytes_per_gpu(arch, layout) == expected


@pytest.mark.parametrize(("layers", "pp", "split"), [
    (32, 1, (32,)), (32, 2, (16, 16)), (80, 3, (27, 27, 26)), (10, 4, (2, 3, 3, 2)), (80, 80, (1,) * 80),
])
def test_layers_split_over_stages_like_vllm(layers: int, pp: int, split: tuple[int, ...]) -> None:
    # vLLM's get_pp_indices: even split, remainder one each to the stages before the last
    assert stage_layers(layers, pp) == split


# 2 (K and V) x layers x KV heads per GPU x 128 x bytes:
#   8B TP1: 2 x 32 x 8 x 128 x 2 = 131072;  TP2: 4 heads -> 65536;  TP8: 1 head -> 16384;
#   TP16: 8 KV heads replicated, still 1 per GPU -> 16384;  fp8 cache at TP1 -> 65536;
#   70B TP4 PP2: 2 x 40 x 2 x 128 x 2 = 40960.
@pytest.mark.parametrize(("arch", "layers", "tp", "kv_dtype", "expected"), [
    (LLAMA_8B, 32, 1, "auto", 131072), (LLAMA_8B, 32, 2, "auto", 65536), (LLAMA_8B, 32, 8, "auto", 16384),
    (LLAMA_8B, 32, 16, "auto", 16384), (LLAMA_8B, 32, 1, "fp8", 65536), (LLAMA_70B, 40, 4, "auto", 40960),
])
def test_kv_cache_bytes_per_token(arch: Architecture, layers: int, tp: int, kv_dtype: str, expected: int) -> None:
    assert kv_bytes_per_token(arch, layers, tp, kv_dtype) == expected


@pytest.mark.parametrize(("tp", "per_gpu"), [(1, 8), (2, 4), (4, 2), (8, 1), (16, 1), (32, 1)])
def test_kv_heads_split_then_replicate(tp: int, per_gpu: int) -> None:
    assert kv_heads_per_gpu(LLAMA_8B, tp) == per_gpu


HEADS_3 = "tensor parallel size 3 does not divide the 32 attention heads"
KV_3 = "tensor parallel size 3 does not divide the 8 KV heads (vLLM needs KV heads % TP == 0 when TP <= KV heads)"
PP_100 = "pipeline parallel size 100 is more than the 80 layers; every stage needs at least one"


@pytest.mark.parametrize(("arch", "layout", "errors"), [
    (LLAMA_8B, Layout(3, 1), [HEADS_3, KV_3]),
    (LLAMA_70B, Layout(1, 100), [PP_100]),
    # 12 heads, 4 KV heads: TP 6 divides the heads, but 6 % 4 != 0, so vLLM cannot replicate the KV heads
    (Architecture(768, 12, 12, 4, 3072, 32000), Layout(6, 1),
     ["tensor parallel size 6 is not a multiple of the 4 KV heads (vLLM needs TP % KV heads == 0 when TP > KV heads)"]),
])
def test_layouts_vllm_cannot_split(arch: Architecture, layout: Layout, errors: list[str]) -> None:
    report = check(arch, GPU_TYPES["H100"], layout, SETTINGS)
    assert [p.message for p in report.errors] == errors
    assert report.estimate is None


# Memory on one GPU: budget = NVML total x 0.9; reserve = 1 GiB + 8192 tokens x (2 x hidden + 3 x intermediate/TP)
# x 2 bytes, + 256 x 128256 x 4 bytes of logits on the last stage. KV tokens come in whole 16-token blocks.
#   A10G: 23028 MiB x 0.9 = 21,731,947,315 bytes.
#   8B, reserve on the last stage: 1,073,741,824 + 8192 x 51200 x 2 + 131,334,144 = 2,043,936,768.
#   8B TP1 PP2, last stage: 21,731,947,315 - 8,030,265,344 - 2,043,936,768 = 11,657,745,203 bytes for KV,
#       / (65536 x 16) = 11117 blocks = 177,872 tokens = 21 sequences of 8192 (first stage holds more).
#   8B TP1 PP1: 21,731,947,315 - 16,060,522,496 - 2,043,936,768 = 3,627,488,051 bytes,
#       / (131072 x 16) = 1729 blocks = 27,664 tokens.
#   70B TP1 PP2 on A10G: 65.7 GiB of weights per GPU against 0.9 x 22.5 GiB.
@pytest.mark.parametrize(("arch", "gpu", "layout", "tokens"), [
    (LLAMA_8B, "A10G", Layout(1, 2), 177_872),
    (LLAMA_8B, "A10G", Layout(1, 1), 27_664),
    (LLAMA_70B, "A100-80GB", Layout(4, 2), None),
    (LLAMA_70B, "H100", Layout(4, 2), None),
])
def test_layouts_that_fit(arch: Architecture, gpu: str, layout: Layout, tokens: int | None) -> None:
    report = check(arch, GPU_TYPES[gpu], layout, SETTINGS, shm_bytes=12 * GIB)
    assert report.ok, report.problems
    assert report.estimate is not None
    if tokens is not None:
        assert report.estimate.kv_tokens == tokens


def test_fewer_full_sequences_than_max_num_seqs_is_a_warning() -> None:
    report = check(LLAMA_8B, GPU_TYPES["A10G"], Layout(1, 2), SETTINGS)
    assert report.ok
    assert [p.message for p in report.warnings] == [
        "the KV cache holds 177,872 tokens: 21 sequences of 8,192 tokens, fewer than max_num_seqs 256"]
    assert report.estimate is not None and report.estimate.max_full_sequences == 21


def test_70b_does_not_fit_on_two_single_a10g_pods() -> None:
    report = check(LLAMA_70B, GPU_TYPES["A10G"], Layout(1, 2), SETTINGS)
    assert [p.message for p in report.errors] == [
        "weights need 65.7 GiB per GPU (stage 2 of 2), more than the 17.6 GiB available per A10G "
        "(0.9 x 22.5 GiB minus 2.7 GiB reserved)"]


def test_kv_cache_shorter_than_one_sequence_is_an_error() -> None:
    # 8B on one A10G holds 27,664 tokens (above), fewer than one 32768-token sequence
    report = check(LLAMA_8B, GPU_TYPES["A10G"], Layout(1, 1), ServingSettings(max_model_len=32768))
    assert [p.message for p in report.errors] == [
        "the KV cache holds 27,664 tokens, less than one sequence of max_model_len 32,768"]


@pytest.mark.parametrize(("tp", "floor_gib"), [(1, 2), (2, 2), (4, 4), (8, 8)])
def test_shm_floor_is_1_gib_per_gpu_at_least_2(tp: int, floor_gib: int) -> None:
    assert shm_floor_bytes(tp) == floor_gib * GIB


def test_small_shm_is_a_warning() -> None:
    report = check(LLAMA_70B, GPU_TYPES["H100"], Layout(4, 2), SETTINGS, shm_bytes=64 * 1024**2)
    assert report.ok
    assert "/dev/shm of 0.1 GiB is below 4.0 GiB for 4 GPU(s) per pod (1 GiB per GPU, at least 2 GiB)" in [
        p.message for p in report.warnings]


@pytest.mark.parametrize(("gpu", "label_bytes", "total_mib"), [
    ("A10G", 24 * GIB, 23028), ("L4", 24 * GIB, 23034), ("L40S", 48 * GIB, 46068), ("A100-40GB", 40 * GIB, 40960),
    ("A100-80GB", 85_899_345_920, 81920), ("H100", 85_899_345_920, 81559), ("H200", 141 * GIB, 143771),
])
def test_gpu_memory_is_the_driver_total_at_or_below_the_label(gpu: str, label_bytes: int, total_mib: int) -> None:
    card = GPU_TYPES[gpu]
    assert card.label_gib * GIB == label_bytes
    assert card.memory_bytes == total_mib * 1024**2 <= label_bytes
    assert card.memory_bytes >= 0.93 * label_bytes   # ECC takes 1/16 of GDDR6 at most


def test_human_bytes_is_gib_with_one_decimal() -> None:
    assert human_bytes(85_899_345_920) == "80.0 GiB"
    assert human_bytes(16_060_522_496) == "15.0 GiB"


def test_smallest_layouts_come_first_with_a_reason_for_every_candidate() -> None:
    search = smallest_layouts(LLAMA_70B, GPU_TYPES["H100"], SETTINGS)
    assert search.fitting[:2] == (Layout(2, 1), Layout(1, 2))   # 2 GPUs, fewer stages first
    assert str(search.candidates[0]).startswith("TP1 x PP1 (1 GPU): weights need 131.4 GiB per GPU")
    assert all(c.reason for c in search.candidates) and len(search.candidates) == 64
    assert smallest_layouts(LLAMA_8B, GPU_TYPES["A10G"], SETTINGS).smallest == Layout(1, 1)
    assert smallest_layouts(LLAMA_70B, GPU_TYPES["A10G"], SETTINGS).smallest == Layout(8, 1)


def test_inline_values_describe_the_same_model_as_config_json() -> None:
    values = {"hiddenSize": 4096, "layers": 32, "attentionHeads": 32, "kvHeads": 8, "intermediateSize": 14336,
              "vocabSize": 128256, "dtype": "bfloat16", "tiedEmbeddings": False}
    assert Architecture.from_values(values) == LLAMA_8B
    assert Architecture.from_values({**values, "headDim": 128}).head_size == LLAMA_8B.head_size == 128


@pytest.mark.parametrize(("config", "message"), [
    ({"hidden_size": None}, "hidden_size: missing"),
    ({"num_hidden_layers": 0}, "num_hidden_layers: expected a positive integer, got 0"),
    ({"num_attention_heads": "32"}, "num_attention_heads: expected a positive integer, got '32'"),
    ({"vocab_size": True}, "vocab_size: expected a positive integer, got True"),
    ({"torch_dtype": "int4"}, "torch_dtype: unknown dtype 'int4'"),
    ({"tie_word_embeddings": "no"}, "tie_word_embeddings: expected true or false, got 'no'"),
])
def test_config_json_errors_name_the_key(config: dict[str, object], message: str) -> None:
    good = json.loads((MODELS / "llama-3-8b.json").read_text())
    with pytest.raises(ValueError, match=f"^{message}"):
        Architecture.from_config({k: v for k, v in {**good, **config}.items() if v is not None})


def test_config_json_defaults_kv_heads_to_heads_and_reads_the_newer_dtype_key() -> None:
    config = json.loads((MODELS / "llama-3-8b.json").read_text())
    del config["num_key_value_heads"]
    assert Architecture.from_config(config).num_kv_heads == 32
    config["dtype"] = config.pop("torch_dtype")
    assert Architecture.from_config(config).dtype == "bfloat16"


@pytest.mark.parametrize(("values", "message"), [
    ({"layers": 32}, "hiddenSize: missing"),
    ({"hiddenSize": 4096, "layers": 32, "heads": 32}, "heads: unknown key"),
])
def test_inline_values_errors_name_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        Architecture.from_values(values)


@st.composite
def architectures(draw: st.DrawFn) -> Architecture:
    kv = draw(st.integers(1, 8))
    heads = kv * draw(st.integers(1, 8))
    return Architecture(hidden_size=heads * draw(st.integers(1, 16)), num_layers=draw(st.integers(1, 48)),
                        num_attention_heads=heads, num_kv_heads=kv, intermediate_size=draw(st.integers(1, 4096)),
                        vocab_size=draw(st.integers(1, 50000)), dtype=draw(st.sampled_from(["bfloat16", "fp8"])),
                        tie_word_embeddings=draw(st.booleans()))


@given(architectures(), st.integers(1, 16), st.integers(1, 48))
def test_weights_per_gpu_never_grow_with_more_tp_or_pp(arch: Architecture, tp: int, pp: int) -> None:
    pp = min(pp, arch.num_layers)
    here = weight_bytes_per_gpu(arch, Layout(tp, pp))
    assert weight_bytes_per_gpu(arch, Layout(tp + 1, pp)) <= here
    if pp < arch.num_layers:
        assert weight_bytes_per_gpu(arch, Layout(tp, pp + 1)) <= here


@given(architectures(), st.integers(0, 3), st.integers(1, 48))
def test_shards_add_up_to_the_model(arch: Architecture, tp_power: int, pp: int) -> None:
    """With TP dividing heads, KV heads, intermediate and vocabulary, the GPUs hold every parameter once, except
    the RMSNorm weights every TP rank keeps, and one more vocabulary matrix when tied embeddings span two stages."""
    tp = 2**tp_power
    arch = Architecture(**{**arch.__dict__, "num_attention_heads": 8 * tp, "num_kv_heads": tp,
                           "hidden_size": 8 * tp * 4, "intermediate_size": tp * 64, "vocab_size": tp * 100})
    pp = min(pp, arch.num_layers)
    stages = stage_layers(arch.num_layers, pp)
    held = sum(tp * stage_parameters(arch, tp, n, first=i == 0, last=i == pp - 1) for i, n in enumerate(stages))
    tied_copy = embedding_parameters(arch) if arch.tie_word_embeddings and pp > 1 else 0
    replicated_norms = (tp - 1) * (2 * arch.num_layers + 1) * arch.hidden_size
    assert held == parameter_count(arch) + tied_copy + replicated_norms
