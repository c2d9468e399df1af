"""Pods on nodes: a pod's TP GPUs come from one node of its GPU type, its CPU and memory requests must fit a
declared node, and a layout that no node can hold is refused with the layouts that fit."""

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
    NodeShape,
    ServingSettings,
    check,
    embedding_parameters,
    gpus_per_node,
    node_shape,
    parameter_count,
    placement,
    pod_problems,
    smallest_layouts,
    stage_layers,
    stage_parameters,
    weight_bytes_per_gpu,
)

MODELS = Path(__file__).resolve().parent.parent / "charts/kserve-multinode/models"
QWEN_72B = Architecture.from_config(json.loads((MODELS / "qwen2.5-72b.json").read_text()))
LLAMA_8B = Architecture.from_config(json.loads((MODELS / "llama-3-8b.json").read_text()))
SETTINGS = ServingSettings()


@pytest.mark.parametrize(("gpu", "shapes"), [
    ("H100", (8,)), ("H200", (8,)), ("A100-80GB", (8,)), ("A100-40GB", (8,)),
    ("L40S", (1, 4, 8)), ("L4", (1, 2, 4, 8)), ("A10G", (1, 4, 8)),
])
def test_gpus_per_node_of_every_type(gpu: str, shapes: tuple[int, ...]) -> None:
    assert GPU_TYPES[gpu].node_gpus == shapes
    assert gpus_per_node(GPU_TYPES[gpu]) == GPU_TYPES[gpu].max_per_node == 8


def test_a_declared_node_size_overrides_the_table() -> None:
    assert gpus_per_node(GPU_TYPES["A100-40GB"], 16) == 16        # Google Cloud a2-megagpu-16g
    assert node_shape(GPU_TYPES["L4"], 4) == NodeShape(4, declared=True)
    assert node_shape(GPU_TYPES["L4"]) == NodeShape(8)


@pytest.mark.parametrize(("gpu", "tp", "per_node", "message"), [
    ("H100", 16, None, "tensor parallel size 16 needs 16 GPUs in one pod, but one H100 node has at most 8"),
    ("L4", 16, None, "tensor parallel size 16 needs 16 GPUs in one pod, but one L4 node has at most 8 (common nodes: "
                     "1, 2, 4, 8)"),
    ("A10G", 8, 4, "tensor parallel size 8 needs 8 GPUs in one pod, but the nodes have 4 A10G GPUs each"),
])
def test_tensor_parallel_beyond_one_node_is_an_error(gpu: str, tp: int, per_node: int | None, message: str) -> None:
    report = check(LLAMA_8B, GPU_TYPES[gpu], Layout(tp, 1), SETTINGS, gpus_per_node=per_node)
    assert [p.message for p in report.errors] == [message]
    assert report.errors[0].code == "node-gpus"
    assert report.estimate is not None        # memory is still estimated: it says what bigger nodes would do


def test_tensor_parallel_within_a_node_passes() -> None:
    assert check(QWEN_72B, GPU_TYPES["H100"], Layout(8, 2), SETTINGS).ok
    assert check(QWEN_72B, GPU_TYPES["A100-40GB"], Layout(16, 1), SETTINGS, gpus_per_node=16).ok


def test_tp_16_on_h100_is_refused_with_the_layouts_that_fit() -> None:
    placed = placement(QWEN_72B, GPU_TYPES["H100"], Layout(16, 1), SETTINGS)
    assert not placed.fits_node
    assert placed.same_gpus == (Layout(8, 2), Layout(4, 4), Layout(2, 8))
    assert placed.smallest == (Layout(2, 1), Layout(1, 3), Layout(4, 1))
    assert placed.fitting[:4] == (Layout(8, 2), Layout(4, 4), Layout(2, 8), Layout(2, 1))
    problem = placed.problem()
    assert problem is not None and problem.code == "node-gpus"
    assert problem.message == (
        "tensor parallel size 16 needs 16 GPUs in one pod, but one H100 node has at most 8; layouts of 16 GPUs that "
        "fit: TP8 x PP2, TP4 x PP4, TP2 x PP8; smallest layouts that fit: TP2 x PP1 (2 GPUs), TP1 x PP3 (3 GPUs), "
        "TP4 x PP1 (4 GPUs)")


def test_a_layout_that_fits_its_node_has_no_placement_problem() -> None:
    placed = placement(QWEN_72B, GPU_TYPES["H100"], Layout(8, 2), SETTINGS)
    assert placed.fits_node and placed.problem() is None
    assert Layout(8, 2) in placed.same_gpus


def test_placement_says_so_when_nothing_fits() -> None:
    placed = placement(QWEN_72B, GPU_TYPES["A10G"], Layout(8, 1), SETTINGS, gpus_per_node=1)
    problem = placed.problem()
    assert placed.fitting == () and problem is not None
    assert problem.message.endswith("but the nodes have 1 A10G GPUs each; no layout of up to 1 GPUs per pod fits")


def test_the_search_goes_up_to_the_gpus_of_one_node() -> None:
    assert len(smallest_layouts(LLAMA_8B, GPU_TYPES["H100"], SETTINGS).candidates) == 8 * 8
    small = smallest_layouts(QWEN_72B, GPU_TYPES["A10G"], SETTINGS, gpus_per_node=4)
    assert max(c.layout.tensor_parallel for c in small.candidates) == 4 and len(small.candidates) == 4 * 8
    assert small.smallest == Layout(4, 2)      # 72B on 4-GPU A10G nodes needs two of them
    big = smallest_layouts(LLAMA_8B, GPU_TYPES["A100-40GB"], SETTINGS, gpus_per_node=16)
    assert len(big.candidates) == 16 * 8


@pytest.mark.parametrize(("cpu", "memory", "codes"), [
    (192_000, 2000 * GIB, []),
    (192_001, 2000 * GIB, ["node-cpu"]),
    (96_000, 2001 * GIB, ["node-memory"]),
    (None, None, []),
])
def test_pod_requests_must_fit_a_declared_node(cpu: int | None, memory: int | None, codes: list[str]) -> None:
    node = NodeShape(8, cpu_millicores=192_000, memory_bytes=2000 * GIB)
    assert [p.code for p in pod_problems(node, cpu, memory)] == codes


def test_pod_request_messages() -> None:
    node = NodeShape(4, cpu_millicores=47_500, memory_bytes=180 * GIB)
    assert [p.message for p in pod_problems(node, 48_000, 192 * GIB)] == [
        "the pod requests 48 CPUs, more than the 47.5 one node can allocate",
        "the pod requests 192.0 GiB of memory, more than the 180.0 GiB one node can allocate"]
    assert pod_problems(NodeShape(4), 10**6, 10**15) == []     # an undeclared node shape checks nothing


@st.composite
def experts(draw: st.DrawFn) -> Architecture:
    """Small architectures that TP 2**k divides, dense or with experts, with or without q/k/v biases."""
    tp = 2 ** draw(st.integers(0, 3))
    count = draw(st.integers(1, 8))
    return Architecture(hidden_size=32 * tp, num_layers=draw(st.integers(1, 24)), num_attention_heads=8 * tp,
                        num_kv_heads=tp, intermediate_size=64 * tp, vocab_size=100 * tp,
                        tie_word_embeddings=draw(st.booleans()), num_experts=count,
                        experts_per_token=draw(st.integers(1, count)), attention_bias=draw(st.booleans()))


@given(experts(), st.integers(0, 3), st.integers(1, 24))
def test_expert_shards_add_up_to_the_model(arch: Architecture, tp_power: int, pp: int) -> None:
    """Every parameter is held once across the GPUs, except what each TP rank keeps whole: the RMSNorm weights and
    the routers; and one more vocabulary matrix when tied embeddings span two stages."""
    tp = min(2**tp_power, arch.num_kv_heads)
    pp = min(pp, arch.num_layers)
    stages = stage_layers(arch.num_layers, pp)
    held = sum(tp * stage_parameters(arch, tp, n, first=i == 0, last=i == pp - 1) for i, n in enumerate(stages))
    tied_copy = embedding_parameters(arch) if arch.tie_word_embeddings and pp > 1 else 0
    router = arch.hidden_size * arch.num_experts if arch.mixture_of_experts else 0
    replicated = (tp - 1) * ((2 * arch.num_layers + 1) * arch.hidden_size + arch.num_layers * router)
    assert held == parameter_count(arch) + tied_copy + replicated


@given(experts(), st.integers(1, 16))
def test_more_tensor_parallel_never_adds_expert_weights_per_gpu(arch: Architecture, tp: int) -> None:
    assert weight_bytes_per_gpu(arch, Layout(tp + 1, 1)) <= weight_bytes_per_gpu(arch, Layout(tp, 1))
